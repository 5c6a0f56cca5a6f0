"""Tracebacks in every log format show code, never the values of local variables."""

from __future__ import annotations

import io
import logging

import pytest
from loguru import logger

from taskq_core.logs import configure_logging
from taskq_core.settings import Settings

PLANTED = "planted-local-secret-value"


def call_with_a_secret(headers: dict[str, str]) -> None:
    token = headers["Authorization"]
    raise RuntimeError(f"failed after {len(token)} characters")


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.usefixtures("restore_logging")
def test_a_logged_traceback_holds_no_local_values(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format=log_format), stream=stream)
    try:
        call_with_a_secret({"Authorization": PLANTED})
    except RuntimeError:
        logger.exception("unexpected error while delivering")
    try:
        call_with_a_secret({"Authorization": PLANTED})
    except RuntimeError:
        logging.getLogger("some.library").exception("a library's own traceback")
    output = stream.getvalue()
    assert "unexpected error while delivering" in output
    assert "a library's own traceback" in output
    assert "failed after 26 characters" in output
    if log_format == "text":
        assert "Traceback" in output
        assert "call_with_a_secret" in output
    assert PLANTED not in output
