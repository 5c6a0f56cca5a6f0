"""requests' transport without the per-call work taskq does not need.

Against a fast target requests spends much of a call's CPU re-deriving what
does not change between calls: the proxy for the URL (looked up twice per
call), the connection pool for the origin, a urllib3 Timeout, the cookies of
every answer (taskq keeps none), and urllib3 writes the headers and the body
in two sends. The adapter below takes requests' own path whenever a proxy
applies and shortcuts only the direct one; behaviour (errors, redirects,
timeouts, streaming) is requests' own. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3 import BaseHTTPResponse
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import ConnectionPool
from urllib3.util import Timeout

_Origin = tuple[str, str, int | None]


@functools.lru_cache(maxsize=1024)
def _origin_of(url: str) -> _Origin:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname or "", parts.port


@functools.lru_cache(maxsize=1024)
def _path_of(url: str) -> str:
    """What requests' request_url sends to a server directly: path and query."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"/{path.lstrip('/')}" if path.startswith("//") else path  # as requests does


@functools.lru_cache(maxsize=64)
def _timeout_of(seconds: float) -> Timeout:
    # urllib3 clones it for each call; the shared one is never changed.
    return Timeout(connect=seconds, read=seconds)


class LeanAdapter(HTTPAdapter):
    """HTTPAdapter that does once what requests does per call, when no proxy applies."""

    def __init__(self, *, pool_connections: int, pool_maxsize: int) -> None:
        self._pools: dict[tuple[_Origin, Any, Any], ConnectionPool] = {}
        self._pools_kept = pool_connections
        super().__init__(pool_connections=pool_connections, pool_maxsize=pool_maxsize)

    def send(  # noqa: PLR0917 - the signature of HTTPAdapter.send
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        if isinstance(timeout, float | int) and not isinstance(timeout, bool):
            timeout = _timeout_of(float(timeout))
        return super().send(request, stream, timeout, verify, cert, proxies)

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> ConnectionPool:
        if _proxied(request, proxies):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        key = (_origin_of(request.url or ""), verify, cert)
        known = self._pools.get(key)
        if known is not None:
            return known
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        # urllib3 2 drops the pools its manager evicts without closing them.
        # As many are kept here as the manager keeps (pool_connections); past
        # it this memory starts again, so no more idle connections stay open
        # than the manager alone would keep.
        if len(self._pools) >= self._pools_kept:
            self._pools.clear()
        self._pools[key] = pool
        return pool

    def request_url(self, request: PreparedRequest, proxies: Mapping[str, str] | None) -> str:
        if _proxied(request, proxies):
            return str(super().request_url(request, proxies))
        return _path_of(request.url or "")

    def build_response(self, req: PreparedRequest, resp: BaseHTTPResponse) -> Response:
        """requests' build_response, less the copy of the answer's cookies into response.cookies.

        taskq never reads them, and the session keeps none (NoCookies).
        """
        response = Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason or ""
        response.url = req.url or ""
        response.request = req
        response.connection = self  # requests sets it too
        return response

    def close(self) -> None:
        self._pools.clear()
        super().close()


def _proxied(request: PreparedRequest, proxies: Mapping[str, str] | None) -> bool:
    return bool(proxies) and bool(select_proxy(request.url or "", dict(proxies or {})))


class OneWriteHTTPConnection(HTTPConnection):
    """urllib3's connection, sending a request's headers and bytes body in one write.

    urllib3 sends the headers, then the body: two system calls and two TCP
    segments per call (TCP_NODELAY is on), each costing CPU on both ends.
    """

    _held: list[bytes] | None = None

    def request(  # type: ignore[override] # urllib3's own signature, which differs from http.client's
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Run urllib3's `request` with its writes held, then write them at once.

        Only a body given as bytes (what taskq sends) is held; anything else goes
        out as urllib3 sends it. The connection is opened by that one write, as
        by urllib3's first, so its errors reach urllib3 the same way.
        """
        if not isinstance(body, bytes) or kwargs.get("chunked"):
            super().request(method, url, body, headers, **kwargs)
            return
        self._held = []
        try:
            super().request(method, url, body, headers, **kwargs)
            data = b"".join(self._held)
        finally:
            self._held = None
        self.send(data)

    def send(self, data: Any) -> None:
        held = self._held
        if held is None:
            super().send(data)
        elif isinstance(data, bytes):
            held.append(data)
        else:  # never for a bytes body; kept in order all the same
            super().send(b"".join(held))
            held.clear()
            super().send(data)


class OneWriteHTTPSConnection(OneWriteHTTPConnection, HTTPSConnection):
    """OneWriteHTTPConnection over TLS: one TLS record for headers and body."""
