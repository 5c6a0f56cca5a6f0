"""requests transport that enforces the egress policy on the address it connects to.

The host is resolved here, every address it resolves to is checked, and
urllib3 then connects to the checked address itself: no window for DNS
rebinding between check and connect. A lookup that fails fails the call
(retryable, like any connection error): urllib3 must never resolve the name
again on its own, unchecked. TLS still verifies the certificate and sends SNI
for the URL's host name. Every redirect hop comes through here too, so a
redirect cannot lead into a blocked range.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError

from taskq_core.egress import EgressPolicy
from taskq_worker.lean_http import LeanAdapter, OneWriteHTTPConnection, OneWriteHTTPSConnection


class EgressRefusedError(ValueError):
    """The egress policy refused the target; retrying cannot help."""


def checked_addresses(policy: EgressPolicy, host: str, port: int) -> list[str]:
    """The addresses to connect to, in the resolver's order; socket.gaierror when none.

    A name is refused if ANY address it resolves to is refused, so a record set
    mixing public and internal addresses cannot be used to slip through.
    """
    reason = policy.refuse_host(host)
    if reason:
        raise EgressRefusedError(reason)
    host_allowed = host.lower().rstrip(".") in policy.allowed_hosts
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "the name resolved to no address")
    for address in addresses:
        reason = policy.refuse_address(ipaddress.ip_address(address), host_allowed=host_allowed)
        if reason:
            raise EgressRefusedError(reason)
    return addresses


def guarded_adapter(policy: EgressPolicy, *, pool_maxsize: int) -> HTTPAdapter:
    """An adapter whose every new connection is checked against `policy`."""

    def connect_checked(
        connection: HTTPConnection, connect: Callable[[], socket.socket]
    ) -> socket.socket:
        # urllib3 connects to `_dns_host` and verifies TLS against `host`; the
        # original name is kept so a reconnect resolves and checks it again.
        name = connection.__dict__.setdefault("_taskq_name", connection._dns_host)
        try:
            addresses = checked_addresses(policy, name, connection.port)
        except socket.gaierror as error:
            # What urllib3 raises for a failed lookup: a retryable connection error.
            raise NameResolutionError(name, connection, error) from error
        # Each checked address in turn, as urllib3 would try the resolver's
        # answers (an unreachable IPv6 address before a working IPv4 one).
        for address in addresses[:-1]:
            connection._dns_host = address
            try:
                return connect()
            except ConnectTimeoutError:  # NewConnectionError (refused, unreachable) included
                continue
        connection._dns_host = addresses[-1]
        return connect()

    class GuardedHTTPConnection(OneWriteHTTPConnection):
        def _new_conn(self) -> socket.socket:
            return connect_checked(self, super()._new_conn)

    class GuardedHTTPSConnection(OneWriteHTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return connect_checked(self, super()._new_conn)

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(LeanAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": GuardedHTTPConnectionPool,
                "https": GuardedHTTPSConnectionPool,
            }

        def send(  # noqa: PLR0917 - the signature of HTTPAdapter.send
            self,
            request: PreparedRequest,
            stream: bool = False,
            timeout: Any = None,
            verify: bool | str = True,
            cert: Any = None,
            proxies: Mapping[str, str] | None = None,
        ) -> Response:
            # Through a proxy the proxy resolves the name, so only the URL's own
            # host can be checked here (an address literal, a loopback name).
            if proxies and select_proxy(request.url or "", dict(proxies)):
                host = urlsplit(request.url or "").hostname or ""
                if reason := policy.refuse_host(host):
                    raise EgressRefusedError(reason)
            return super().send(request, stream, timeout, verify, cert, proxies)

    return GuardedAdapter(pool_connections=16, pool_maxsize=pool_maxsize)
