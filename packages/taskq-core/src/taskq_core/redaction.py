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


def redact_url(url: str) -> str:
    """The url with its password and credential-like query values replaced, for status views.

    Unlike `loggable_url` it keeps the path and the rest of the query, so an
    operator can still tell calls apart (and edit them) from what is shown.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "[unparseable url]"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{REDACTED}@{hostport}"
    query = "&".join(
        f"{name}={REDACTED}" if is_sensitive_header(name) and sep else f"{name}{sep}{value}"
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "", ""))
