"""Keeps forwarded secrets out of logs and status views."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

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


_TEXT_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    # (what the lowered text must contain for the pattern to be worth trying, the pattern)
    (needles, re.compile(pattern))
    for needles, pattern in (
        # scheme://user:password@host (a URL, a DSN) keeps the user, loses the password.
        (("://",), r"(?P<keep>://[^\s/@:'\"]*:)[^\s/@'\"]+(?P<end>@)"),
        # name=value: a query string (?api_key=...), a libpq keyword DSN
        # (password=... or password='...'); masked when the name looks like a credential.
        (
            ("=",),
            r"(?P<keep>(?<![\w.-])(?P<name>[\w.-]+)=)(?:'(?:[^'\\]|\\.)*'|[^\s&#'\",;)]+)",
        ),
        # A quoted name and value, as in a dict's repr or a JSON document:
        # 'X-Api-Key': 'value', "password": "value".
        (
            ("':", '":'),
            r"(?P<keep>(?P<q>['\"])(?P<name>[\w.-]+)(?P=q)\s*:\s*(?P<v>['\"]))"
            r"(?:(?!(?P=v))[^\\]|\\.)*(?P<end>(?P=v))",
        ),
        # A header line as an HTTP library words it: Authorization: Bearer ...
        (
            ("authorization", "cookie"),
            r"(?i)(?P<keep>\b(?:proxy-)?authorization\s*:\s*|\b(?:set-)?cookie\s*:\s*)"
            r"[^\r\n'\"]+",
        ),
        # A credential standing on its own: Bearer <token>, Basic <base64>.
        (("bearer", "basic"), r"(?i)(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{4,}"),
    )
)


def _mask(match: re.Match[str]) -> str:
    name = match.groupdict().get("name")
    if name is not None and not is_sensitive_header(name):
        return match[0]
    return f"{match['keep']}{REDACTED}{match.groupdict().get('end') or ''}"


MIN_KNOWN_SECRET = 8
"""Known secrets shorter than this are not masked word for word: that would garble words."""


def dsn_password(dsn: str) -> str | None:
    """The password a DSN carries, URL form (user:password@) or keyword form (password=...)."""
    keyword = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    if keyword is not None:
        value = keyword.group(1)
        return value[1:-1] if value.startswith("'") else value
    try:
        return urlsplit(dsn).password
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Redactor:
    """Masks credentials in free text: log messages, exception texts, whole tracebacks.

    Two nets, because neither alone is enough: the values this process knows to
    be secret (`known`: the DSN's password, API keys, SECRETS_KEY), masked
    wherever they appear, even inside a driver's error text; and the shapes
    credentials take in text (URL passwords, token=..., header lines, Bearer
    tokens), for secrets the process only meets at run time (a task's headers).
    """

    known: tuple[str, ...] = ()

    @classmethod
    def of(cls, *secrets: str | None) -> Redactor:
        """A redactor for these values, with their percent-decoded forms; short ones skipped."""
        given = {value for value in secrets if value}
        values = {
            form
            for value in given
            for form in (value, unquote(value))
            if len(form) >= MIN_KNOWN_SECRET
        }
        # Longest first, so a secret containing another is masked whole.
        return cls(known=tuple(sorted(values, key=len, reverse=True)))

    def text(self, text: str) -> str:
        """`text` with every credential it holds replaced by REDACTED."""
        for secret in self.known:
            text = text.replace(secret, REDACTED)
        lowered = text.lower()
        for needles, pattern in _TEXT_PATTERNS:
            if any(needle in lowered for needle in needles):
                text = pattern.sub(_mask, text)
        return text
