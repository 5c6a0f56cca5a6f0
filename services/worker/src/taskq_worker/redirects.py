"""What a redirect hop carries: the task's headers stay with the origin the task named.

requests strips only Authorization (and Cookie) when a redirect leaves the
host; X-Api-Key or any custom credential would still go along to wherever
the target points. A hop to another origin (scheme, host or port) carries
taskq's own headers only; a hop within the origin keeps everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from taskq_worker.proxies import bypasses

DEFAULT_HEADERS = {"User-Agent": "taskq", "Accept": "*/*"}
"""Sent with every call unless the task's own headers override them."""
IDENTITY_HEADERS = ("Idempotency-Key", "X-Taskq-Task-Id", "X-Taskq-Attempt")
"""Set by taskq on every call, after the task's headers: never the client's values."""
# Set by requests for this hop: the body's framing, and the credentials of a
# proxy from the environment (rebuild_proxies has already replaced any the
# task supplied).
_HOP_HEADERS = ("Content-Length", "Transfer-Encoding", "Proxy-Authorization")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """RFC 6454 origin: scheme, host and port (the scheme's default when none is given)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


class TaskSession(requests.Session):
    """A session whose redirects to another origin drop every header the task supplied.

    `no_proxy` (NO_PROXY, read once with the proxies) sends the origins it names
    directly: with trust_env off requests would proxy them too.
    """

    no_proxy: str | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if "proxies" not in kwargs and not self.trust_env:
            # What requests would resolve with trust_env off (the session's own),
            # without parsing the URL for it on every call; NO_PROXY applied.
            kwargs["proxies"] = self._proxies_for(request.url or "")
        return super().send(request, **kwargs)

    def resolve_redirects(
        self, resp: requests.Response, req: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        # Most replies are no redirect; requests parses the URL before it looks.
        if self.get_redirect_target(resp) is None:
            return
        yield from super().resolve_redirects(resp, req, *args, **kwargs)

    def rebuild_proxies(
        self, prepared_request: requests.PreparedRequest, proxies: Any
    ) -> dict[str, str]:
        # Each redirect hop: the session's proxies unless NO_PROXY names its origin.
        hop_proxies = self._proxies_for(prepared_request.url or "")
        rebuilt = super().rebuild_proxies(prepared_request, hop_proxies)  # type: ignore[no-untyped-call] # untyped in types-requests
        return dict(rebuilt)

    def _proxies_for(self, url: str) -> dict[str, str]:
        if self.no_proxy and self.proxies and bypasses(url, self.no_proxy):
            return {}
        return dict(self.proxies)

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        # Replaces requests' own rule (drop Authorization on a change of host;
        # netrc is off with trust_env), which this one covers.
        if origin(prepared_request.url or "") == origin(response.request.url or ""):
            return
        before = prepared_request.headers
        kept: CaseInsensitiveDict[str] = CaseInsensitiveDict(DEFAULT_HEADERS)
        for name in (*IDENTITY_HEADERS, *_HOP_HEADERS):
            if name in before:
                kept[name] = before[name]
        if prepared_request.body is not None:
            # taskq always sends JSON; the task's own Content-Type stays behind too.
            kept["Content-Type"] = "application/json"
        prepared_request.headers = kept
