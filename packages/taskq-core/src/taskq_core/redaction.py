"""Keeps forwarded secrets out of logs and status views."""

from __future__ import annotations

from collections.abc import Mapping

REDACTED = "[redacted]"
_SENSITIVE_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SENSITIVE_PARTS = ("token", "secret", "key", "password", "auth", "session", "signature")


def is_sensitive_header(name: str) -> bool:
    """True for headers whose values are credentials."""
    lowered = name.lower()
    return lowered in _SENSITIVE_NAMES or any(part in lowered for part in _SENSITIVE_PARTS)


def redact_headers(headers: object) -> object:
    """A copy of a header mapping with credential values replaced; other values pass through."""
    if not isinstance(headers, Mapping):
        return headers
    return {
        name: REDACTED if is_sensitive_header(str(name)) else value
        for name, value in headers.items()
    }
