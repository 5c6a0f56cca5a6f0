"""What of a reply body is kept (response capture, issue 15), without a network."""

from __future__ import annotations

import base64

import pytest

from taskq_core.capture import capture
from taskq_core.errors import SettingsError
from taskq_core.settings import Settings


def test_utf8_text_is_kept_as_text() -> None:
    kept = capture('{"ok": "caf\u00e9"}'.encode(), truncated=False, content_type="application/json")
    assert (kept.body, kept.encoding, kept.content_type, kept.truncated) == (
        '{"ok": "caf\u00e9"}',
        "utf-8",
        "application/json",
        False,
    )


def test_a_character_cut_by_the_limit_is_dropped_whole() -> None:
    cut = "ab\u20ac".encode()[:4]  # the euro sign is 3 bytes; 2 of them are kept
    kept = capture(cut, truncated=True, content_type="text/plain")
    assert (kept.body, kept.encoding, kept.truncated) == ("ab", "utf-8", True)


def test_an_incomplete_character_in_a_whole_body_is_not_text() -> None:
    body = "ab\u20ac".encode()[:4]
    kept = capture(body, truncated=False, content_type=None)
    assert kept.encoding == "base64"
    assert base64.b64decode(kept.body) == body


@pytest.mark.parametrize(
    "body", [b"\x89PNG\r\n\x1a\n\x00\x00", b"caf\xe9 latin-1", b"text with \x00 NUL", b"\xff\xfe"]
)
def test_binary_other_charsets_and_nul_are_kept_as_base64(body: bytes) -> None:
    kept = capture(body, truncated=False, content_type="application/octet-stream")
    assert kept.encoding == "base64"
    assert base64.b64decode(kept.body) == body


def test_the_content_type_is_printable_and_bounded() -> None:
    kept = capture(b"", truncated=False, content_type="text/html\x00\x1b[31m" + "x" * 500)
    assert "\x00" not in kept.content_type
    assert "\x1b" not in kept.content_type
    assert len(kept.content_type) == 200


def test_the_capture_size_setting() -> None:
    assert Settings().response_capture_bytes == 4096
    assert Settings.from_env({"RESPONSE_CAPTURE_BYTES": "0"}).response_capture_bytes == 0
    assert Settings.from_env({"RESPONSE_CAPTURE_BYTES": "16KiB"}).response_capture_bytes == 16384
    for bad in ("-1", "1MiB", "lots"):
        with pytest.raises(SettingsError, match="RESPONSE_CAPTURE_BYTES"):
            Settings.from_env({"RESPONSE_CAPTURE_BYTES": bad})
