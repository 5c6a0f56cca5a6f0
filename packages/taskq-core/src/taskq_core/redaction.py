"""Keeps forwarded secrets out of logs and status views."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

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


def loggable_url(url: str) -> str:
    """The url as logs may show it: scheme, host, port and path only.

    Query strings and fragments often carry tokens (`?api_key=...`), and
    `user:password@` carries a credential outright; all three are dropped.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "[unparseable url]"
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
