"""requests' transport over libcurl (pycurl) for the calls that go straight to their target.

requests is the worker's HTTP client (sessions, prepared requests, redirects,
exceptions); below it, urllib3 and http.client spend ~0.2-0.45 ms of Python
per call against a fast target, where libcurl makes the same exchange in
~0.04 ms, most of it outside the GIL (docs/benchmarks.md). This adapter makes
a direct call's single exchange with libcurl and hands requests a Response
like urllib3's; requests keeps everything above one hop. Anything it is not
built for (a proxy, a body that is not bytes, a scheme other than http(s))
goes to the urllib3 adapter it is given.

The egress rule stays the one in guarded_http: the host is resolved here and
every address checked, and libcurl is told those addresses (CURLOPT_RESOLVE),
so it never resolves a name itself; every socket it opens is checked again
against them. A checked lookup is reused for ADDRESS_TTL seconds.

The reply body is read whole, up to the adapter's byte cap; past the cap or
the call's timeout the connection is dropped and the reply kept as far as it
came (what the delivery's own budget did with urllib3's stream).
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import certifi
import pycurl
import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3.exceptions import MaxRetryError, NameResolutionError

from taskq_core.egress import EgressPolicy
from taskq_worker.guarded_http import EgressRefusedError, checked_addresses

ADDRESS_TTL = 30.0
"""Seconds a checked lookup is reused: like a resolver's cache, never for a failed one."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Headers libcurl adds by itself when the request has none: an empty "Name:"
# tells it to leave them out, so what goes out is what requests prepared.
_CURL_ADDED = tuple(
    (name.lower().encode(), f"{name}:".encode())
    for name in ("Accept", "Content-Type", "Expect", "User-Agent")
)
_TIMED_OUT = pycurl.E_OPERATION_TIMEDOUT
_UNDECODABLE = pycurl.E_BAD_CONTENT_ENCODING
_CUT_BY_US = pycurl.E_WRITE_ERROR
_SSL_ERRORS = frozenset(
    getattr(pycurl, name)
    for name in (
        "E_SSL_CONNECT_ERROR",
        "E_PEER_FAILED_VERIFICATION",
        "E_SSL_CERTPROBLEM",
        "E_SSL_CIPHER",
        "E_SSL_CACERT",
        "E_SSL_CACERT_BADFILE",
        "E_SSL_ENGINE_NOTFOUND",
        "E_SSL_ENGINE_SETFAILED",
        "E_SSL_SHUTDOWN_FAILED",
        "E_SSL_CRL_BADFILE",
        "E_SSL_ISSUER_ERROR",
        "E_SSL_PINNEDPUBKEYNOTMATCH",
        "E_SSL_INVALIDCERTSTATUS",
        "E_USE_SSL_FAILED",
    )
    if hasattr(pycurl, name)
)


class _Exchange:
    """One call's state while libcurl runs it: the sockets it may open and what it received."""

    __slots__ = (
        "allowed",
        "body",
        "cap",
        "cut",
        "header_lines",
        "opened",
        "received",
        "refused",
    )

    def __init__(self, allowed: frozenset[str], cap: int) -> None:
        self.allowed = allowed
        self.cap = cap
        self.opened: list[socket.socket] = []
        self.refused = False
        # Every header line libcurl passed on, the status lines of interim (1xx)
        # replies included: list.append runs without a Python frame.
        self.header_lines: list[bytes] = []
        self.body: list[bytes] = []
        self.received = 0
        self.cut = False

    def open_socket(self, purpose: int, address: Any) -> socket.socket | int:
        # Only an address checked for this call: libcurl was told no other.
        if address.addr[0] not in self.allowed:
            self.refused = True
            return int(pycurl.SOCKET_BAD)
        # pycurl hands libcurl a duplicate of the descriptor; this one is closed after the call.
        self.opened.append(socket.socket(address.family, address.socktype, address.protocol))
        return self.opened[-1]

    def final_reply(self) -> tuple[bytes, list[bytes]]:
        """The status line and header lines of the last reply (an interim 1xx is forgotten)."""
        lines = self.header_lines
        start = next(
            (i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith(b"HTTP/")), None
        )
        if start is None:
            return b"", []
        return lines[start], lines[start + 1 :]

    def on_body(self, chunk: bytes) -> int | None:
        self.received += len(chunk)
        self.body.append(chunk)
        if self.received > self.cap:
            self.cut = True
            return 0  # fewer bytes than given: libcurl stops and drops the connection
        return None

    def kept_after(self, code: int) -> bool:
        """Whether a failed transfer still leaves a reply to keep.

        Cut by the cap, or, once a whole final header block (status line to
        blank line) arrived, by the clock or by a body that would not decode:
        the target answered, as urllib3 would report it.
        """
        status_line, lines = self.final_reply()
        code_part = status_line.split(None, 2)[1:2]
        interim = bool(code_part) and code_part[0].startswith(b"1")  # 1xx: more is to come
        answered = bool(lines) and not lines[-1].strip() and not interim
        return (code == _CUT_BY_US and self.cut) or (
            code in (_TIMED_OUT, _UNDECODABLE) and answered
        )

    def close_sockets(self) -> None:
        for sock in self.opened:
            sock.close()


class CurlAdapter(BaseAdapter):
    """Direct http(s) calls through libcurl, one handle per thread; the rest through `fallback`."""

    def __init__(self, policy: EgressPolicy, fallback: HTTPAdapter, *, max_body_bytes: int) -> None:
        super().__init__()
        self._policy = policy
        self._fallback = fallback
        self._max_body_bytes = max_body_bytes
        self._local = threading.local()
        self._handles: list[pycurl.Curl] = []
        self._handles_lock = threading.Lock()
        # (host, port) -> (until, the checked addresses, their CURLOPT_RESOLVE entry)
        self._lookups: dict[tuple[str, int], tuple[float, frozenset[str], str]] = {}

    def send(  # noqa: PLR0917 - the signature of BaseAdapter.send
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if (
            scheme not in _DEFAULT_PORTS
            or not isinstance(request.body, bytes | None)
            or (proxies and select_proxy(url, dict(proxies)))
        ):
            return self._fallback.send(request, stream, timeout, verify, cert, proxies)
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise requests.exceptions.InvalidURL("the URL's port is not a number") from None
        allowed, resolve_entry = self._addresses(parts.hostname or "", port, request)
        exchange = _Exchange(allowed, self._max_body_bytes)
        handle = self._handle()
        _configure(handle, request, exchange, timeout=timeout, verify=verify, cert=cert)
        handle.setopt(pycurl.RESOLVE, [resolve_entry])
        try:
            handle.perform()
        except pycurl.error as error:
            code = error.args[0]
            if exchange.refused:
                raise EgressRefusedError("an address outside the checked ones") from None
            if not exchange.kept_after(code):
                raise _requests_error(code, handle, request) from None
        finally:
            exchange.close_sockets()
        return self._response(request, handle, exchange)

    def close(self) -> None:
        with self._handles_lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            # One still running a call raises; it is freed with its thread.
            with contextlib.suppress(pycurl.error):
                handle.close()
        self._local = threading.local()
        self._fallback.close()

    def _handle(self) -> pycurl.Curl:
        handle: pycurl.Curl | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = pycurl.Curl()
            self._local.handle = handle
            with self._handles_lock:
                self._handles.append(handle)
        return handle

    def _addresses(
        self, host: str, port: int, request: requests.PreparedRequest
    ) -> tuple[frozenset[str], str]:
        """The checked addresses of host:port and the entry that pins libcurl to them."""
        key = (host, port)
        known = self._lookups.get(key)
        now = time.monotonic()
        if known is not None and known[0] > now:
            return known[1], known[2]
        try:
            addresses = checked_addresses(self._policy, host, port)
        except socket.gaierror as error:
            # What requests raises for urllib3's failed lookup: a retryable
            # connection error (no URL in it: its query may hold a key).
            # No urllib3 connection or pool took part: both are None.
            failed = NameResolutionError(host, None, error)  # type: ignore[arg-type]
            raise requests.exceptions.ConnectionError(
                MaxRetryError(None, "", failed),  # type: ignore[arg-type]
                request=request,
            ) from None
        if len(self._lookups) >= 1024:
            self._lookups.clear()
        checked = (now + ADDRESS_TTL, frozenset(addresses), _resolve_entry(host, port, addresses))
        self._lookups[key] = checked
        return checked[1], checked[2]

    def _response(
        self, request: requests.PreparedRequest, handle: pycurl.Curl, exchange: _Exchange
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = int(handle.getinfo(pycurl.RESPONSE_CODE))
        status_line, header_lines = exchange.final_reply()
        response.headers = _headers(header_lines)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(b"".join(exchange.body)[: self._max_body_bytes + 1])
        status = status_line.decode("latin-1").split(None, 2)
        response.reason = status[2].strip() if len(status) > 2 else ""
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[assignment] # typed for HTTPAdapter, set by any
        return response


def _configure(
    handle: pycurl.Curl,
    request: requests.PreparedRequest,
    exchange: _Exchange,
    *,
    timeout: Any,
    verify: bool | str,
    cert: Any,
) -> None:
    """Every option of one call, from a reset handle (its connections and TLS sessions stay)."""
    handle.reset()
    handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
    handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    handle.setopt(pycurl.PROXY, "")  # none from the environment: proxied calls go to the fallback
    handle.setopt(pycurl.URL, request.url or "")
    method = (request.method or "GET").upper()
    if method == "HEAD":
        handle.setopt(pycurl.NOBODY, 1)
    elif method != "GET" or request.body is not None:
        handle.setopt(pycurl.CUSTOMREQUEST, method)
        if request.body is not None:
            handle.setopt(pycurl.POSTFIELDS, request.body)
    handle.setopt(pycurl.HTTPHEADER, _header_lines(request.headers))
    accepted = request.headers.get("Accept-Encoding")
    if accepted:
        # The caller asked for encoded replies: libcurl decodes what it knows, as
        # urllib3 did (its own Accept-Encoding gives way to the request's).
        raw = accepted.encode("latin-1") if isinstance(accepted, str) else accepted
        handle.setopt(pycurl.ACCEPT_ENCODING, raw)
    connect, whole = _limits(timeout)
    if connect is not None:
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(connect * 1000)))
    if whole is not None:
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(whole * 1000)))
    if verify is False:
        handle.setopt(pycurl.SSL_VERIFYPEER, 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 0)
    else:
        handle.setopt(pycurl.CAINFO, certifi.where() if verify is True else str(verify))
    if cert:
        cert_file, key_file = cert if isinstance(cert, tuple) else (cert, None)
        handle.setopt(pycurl.SSLCERT, cert_file)
        if key_file:
            handle.setopt(pycurl.SSLKEY, key_file)
    handle.setopt(pycurl.OPENSOCKETFUNCTION, exchange.open_socket)
    handle.setopt(pycurl.HEADERFUNCTION, exchange.header_lines.append)
    handle.setopt(pycurl.WRITEFUNCTION, exchange.on_body)


def _limits(timeout: Any) -> tuple[float | None, float | None]:
    """Seconds to connect and for the whole exchange: a call's timeout bounds both.

    One figure bounds the answer and its body together, as the reference's
    TIMEOUT (Go's http.Client.Timeout) does; requests' (connect, read) pair
    gives the exchange their sum.
    """
    if isinstance(timeout, tuple):
        connect, read = timeout
        return connect, None if read is None else (connect or 0) + read
    return timeout, timeout


def _header_lines(headers: Mapping[str, str | bytes]) -> list[bytes]:
    """The request's headers as libcurl takes them, in the bytes http.client would send."""
    # requests' own store holds (name as given, value): Mapping.items() on a
    # CaseInsensitiveDict looks every name up again, lower-casing it.
    is_requests = isinstance(headers, CaseInsensitiveDict)
    pairs = headers._store.values() if is_requests else headers.items()  # type: ignore[attr-defined]
    lines = []
    present = set()
    for name, value in pairs:
        try:
            raw_name = name.encode("latin-1") if isinstance(name, str) else name
            raw_value = value.encode("latin-1") if isinstance(value, str) else value
        except UnicodeEncodeError:
            raise _refused_header(name) from None
        # "Name;" is libcurl's way to send a header with an empty value.
        line = raw_name + b": " + raw_value if raw_value else raw_name + b";"
        if b"\0" in line:  # libcurl takes C strings: a NUL would end the line early
            raise _refused_header(name)
        lines.append(line)
        present.add(raw_name.lower())
    lines.extend(suppress for name, suppress in _CURL_ADDED if name not in present)
    return lines


class UnsendableHeaderError(requests.exceptions.InvalidHeader):
    """A header libcurl cannot send (a NUL, a character outside latin-1): named, never quoted."""

    def __init__(self, name: str) -> None:
        self.header_name = name
        super().__init__(f"header {name!r} has a value the HTTP client cannot send")


def _refused_header(name: str | bytes) -> UnsendableHeaderError:
    return UnsendableHeaderError(name if isinstance(name, str) else name.decode("latin-1"))


def _headers(lines: list[bytes]) -> CaseInsensitiveDict[str]:
    """A reply's header lines as requests gives them: repeated names joined with ", "."""
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    store = headers._store  # type: ignore[attr-defined] # lower-cased name -> (name, value)
    last = ""
    for raw in lines:  # one line each, as libcurl hands them over
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            continue
        if line[0] in " \t":  # an obsolete folded continuation
            if last:
                name, value = store[last]
                store[last] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            continue  # not a header line: http.client would set it aside too
        value = value.strip()
        last = name.lower()
        known = store.get(last)
        store[last] = (name, value) if known is None else (known[0], f"{known[1]}, {value}")
    return headers


def _resolve_entry(host: str, port: int, addresses: list[str]) -> str:
    listed = ",".join(f"[{a}]" if ipaddress.ip_address(a).version == 6 else a for a in addresses)
    return f"{host}:{port}:{listed}"


def _requests_error(
    code: int, handle: pycurl.Curl, request: requests.PreparedRequest
) -> requests.exceptions.RequestException:
    """libcurl's failure as the requests exception urllib3's would have been.

    libcurl's own message is left out: it may quote the URL.
    """
    message = f"libcurl error {code}"
    if code == _TIMED_OUT:
        if handle.getinfo(pycurl.CONNECT_TIME) == 0:
            return requests.exceptions.ConnectTimeout(message, request=request)
        return requests.exceptions.ReadTimeout(message, request=request)
    if code in _SSL_ERRORS:
        return requests.exceptions.SSLError(message, request=request)
    if code == pycurl.E_URL_MALFORMAT:
        return requests.exceptions.InvalidURL(message, request=request)
    return requests.exceptions.ConnectionError(message, request=request)
