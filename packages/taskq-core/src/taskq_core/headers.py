"""What a forwarded header may be: RFC 9110 field syntax, sendable by the worker, bounded.

Checked at submission so that a header the worker's HTTP client would refuse
(it encodes values as latin-1 and rejects line breaks and leading
whitespace) gets a 400 naming the field, instead of a message that can never
be sent. Error texts name the header, never its value: values are secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from taskq_core.errors import InvalidFieldError

MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 8192
"""Characters in a header name and value: common servers refuse longer header lines anyway."""
DEFAULT_MAX_HEADERS_SIZE = 32 * 1024
"""Bytes of one headers object (name, ": ", value, CRLF each): MAX_HEADERS_SIZE's default."""
LINE_OVERHEAD = 4  # ": " and CRLF around each header on the wire

# RFC 9110 section 5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5: visible characters and obs-text (latin-1 above 0x7F), with spaces
# and tabs only between them. Everything else makes a request the client cannot send.
_FIELD_VALUE = re.compile(
    r"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)
_LINE_BREAK_OR_NUL = re.compile(r"[\r\n\x00]")
_NOT_LATIN1 = re.compile(r"[^\x00-\xff]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_headers(
    field: str, headers: Mapping[str, str], *, max_size: int = DEFAULT_MAX_HEADERS_SIZE
) -> None:
    """Raise InvalidFieldError naming `field.<name>` for the first header that cannot be sent."""
    size = 0
    for name, value in headers.items():
        if len(name) > MAX_HEADER_NAME:
            raise InvalidFieldError(
                field, f"header name {name[:40]!r}... is longer than {MAX_HEADER_NAME} characters"
            )
        if not _TOKEN.fullmatch(name):
            raise InvalidFieldError(
                field, f"{name[:80]!r} is not a valid header name (RFC 9110 token characters)"
            )
        where = f"{field}.{name}"
        if len(value) > MAX_HEADER_VALUE:
            raise InvalidFieldError(where, f"is longer than {MAX_HEADER_VALUE} characters")
        if problem := value_problem(value):
            raise InvalidFieldError(where, problem)
        size += len(name) + len(value) + LINE_OVERHEAD
        if size > max_size:
            raise InvalidFieldError(
                field,
                f"headers take more than {max_size} bytes (MAX_HEADERS_SIZE); "
                "send fewer or shorter headers",
            )


def value_problem(value: str) -> str | None:
    """Why `value` is not a header value the worker can send, without quoting it; None if fine."""
    if _FIELD_VALUE.fullmatch(value):
        return None
    if match := _LINE_BREAK_OR_NUL.search(value):
        return f"must not contain line breaks or NUL characters (position {match.start()})"
    if match := _NOT_LATIN1.search(value):
        return (
            "must be latin-1 (ISO-8859-1) text, as HTTP/1.1 sends it: "
            f"the character at position {match.start()} is not"
        )
    if match := _CONTROL.search(value):
        return f"must not contain control characters (position {match.start()})"
    return "must not start or end with a space or tab"
