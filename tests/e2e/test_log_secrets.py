"""Planted secrets stay out of a real worker's log in both formats, tracebacks included.

The calls fail in every way that builds an error text or a traceback: a
header value the HTTP client refuses, a header value it cannot encode (an
unexpected error inside the worker), a URL with a password and a query token
on a closed port, and a target answering 500.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from taskq_core.settings import Settings
from tests.support.direct_queue import queue_directly
from tests.support.processes import BIN, free_port, settings_environment, start_worker, stop
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import statuses

pytestmark = pytest.mark.e2e

HEADERS = {
    "Authorization": "Bearer planted-authorization",
    "X-Api-Key": "planted-api-key",
    "Cookie": "session=planted-cookie",
    "X-Plain": "planted-plain-value",
}
SECRETS = [
    *HEADERS.values(),
    "planted-leading-space",
    "planted-unencodable",
    "planted-url-password",
    "planted-query-token",
]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_planted_secret_reaches_the_log_or_the_stored_error(
    settings: Settings, target: Target, tmp_path: Path, log_format: str
) -> None:
    target.responder = lambda _request: Reply(status=500)
    closed = free_port()
    task_id = queue_directly(
        settings,
        "secrets",
        [
            {
                "url": f"{target.url}/refused-header",
                "method": "POST",
                "headers": {**HEADERS, "Authorization": " Bearer planted-leading-space"},
            },
            {
                "url": f"{target.url}/unencodable",
                "method": "POST",
                "headers": {**HEADERS, "X-Api-Key": "planted-unencodable-\u20ac"},
            },
            {
                "url": f"http://user:planted-url-password@127.0.0.1:{closed}/x"
                "?token=planted-query-token",
                "method": "POST",
                "headers": HEADERS,
            },
            {"url": f"{target.url}/broken", "method": "POST", "headers": HEADERS},
        ],
    )
    log = tmp_path / f"worker-{log_format}.log"
    worker = start_worker(settings, log, LOG_FORMAT=log_format, LOG_LEVEL="debug", MAX_RETRIES=0)
    try:
        # Every message has been tried (the unencodable one may be retried meanwhile).
        wait_until(
            lambda: all(row["error"] for row in statuses(settings.postgres_dsn, task_id)),
            timeout=30,
        )
    finally:
        assert stop(worker) == 0
    text = log.read_text()
    stored = " ".join(str(row["error"]) for row in statuses(settings.postgres_dsn, task_id))
    assert "call failed" in text  # the failures were logged at all
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into the {log_format} log"
        assert secret not in stored, f"{secret!r} leaked into a stored error"


@pytest.mark.parametrize("command", ["taskq-api", "taskq-worker", "taskq-migrate"])
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_start_up_error_quoting_the_dsn_password_is_redacted(
    settings: Settings, command: str, log_format: str
) -> None:
    """libpq quotes a malformed password in its error; no process may print it.

    Settings refuse the connection string before any connect, naming the reason
    without the quoted part; were anything to escape, Python's own hook goes
    through the same redacted log.
    """
    password = "planted%zz-dsn-password"
    dsn = f"postgresql://taskq:{password}@127.0.0.1:{free_port()}/taskq"
    finished = subprocess.run(
        [str(BIN / command)],
        env=settings_environment(settings, POSTGRES_DSN=dsn, LOG_FORMAT=log_format),
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (finished.stdout + finished.stderr).decode()
    assert finished.returncode != 0, output
    assert "invalid percent-encoded token" in output  # the cause is still shown
    assert "Traceback" not in output  # a configuration error is one line, not a crash
    assert "planted" not in output
