"""The first bytes of a target's reply, kept in the status row (RESPONSE_CAPTURE_BYTES).

A captured body must be safe to store as PostgreSQL text and to show as JSON:
UTF-8 text without NUL is kept as text (a character cut by the byte limit is
dropped whole, never half-kept); anything else (binary, another charset, NUL)
is kept as base64 of the same bytes, and `encoding` says which.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

MAX_CONTENT_TYPE = 200
"""Characters of the Content-Type kept: enough for any real media type with parameters."""

BodyEncoding = Literal["utf-8", "base64"]


@dataclass(frozen=True, slots=True)
class CapturedResponse:
    """The kept prefix of a reply body, how it is encoded, and whether more was sent."""

    body: str
    encoding: BodyEncoding
    content_type: str
    truncated: bool


def capture(prefix: bytes, *, truncated: bool, content_type: str | None) -> CapturedResponse:
    """`prefix` (at most RESPONSE_CAPTURE_BYTES of the body) as storable text."""
    text = _utf8_text(prefix, cut=truncated)
    encoding: BodyEncoding = "utf-8"
    if text is None:
        text, encoding = base64.b64encode(prefix).decode("ascii"), "base64"
    return CapturedResponse(
        body=text,
        encoding=encoding,
        content_type=_printable(content_type or "")[:MAX_CONTENT_TYPE],
        truncated=truncated,
    )


def _utf8_text(prefix: bytes, *, cut: bool) -> str | None:
    """The prefix as text if it is UTF-8 without NUL; None otherwise."""
    if b"\x00" in prefix:
        return None  # PostgreSQL text cannot hold NUL
    try:
        return prefix.decode("utf-8")
    except UnicodeDecodeError as error:
        # Only a sequence cut by the byte limit at the very end is forgiven.
        if cut and error.reason == "unexpected end of data" and error.end == len(prefix):
            return prefix[: error.start].decode("utf-8")
        return None


def _printable(text: str) -> str:
    return "".join(character for character in text if character.isprintable())
