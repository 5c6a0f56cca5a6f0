"""requests transport that enforces the egress policy on the address it connects to.

The host is resolved here, every address it resolves to is checked, and
urllib3 then connects to the checked address itself: no window for DNS
rebinding between check and connect. TLS still verifies the certificate and
sends SNI for the URL's host name. Every redirect hop comes through here too,
so a redirect cannot lead into a blocked range.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from taskq_core.egress import EgressPolicy


class EgressRefusedError(ValueError):
    """The egress policy refused the target; retrying cannot help."""


def checked_address(policy: EgressPolicy, host: str, port: int) -> str | None:
    """The address to connect to, or None when the name does not resolve (urllib3 reports that).

    A name is refused if ANY address it resolves to is refused, so a record set
    mixing public and internal addresses cannot be used to slip through.
    """
    reason = policy.refuse_host(host)
    if reason:
        raise EgressRefusedError(reason)
    host_allowed = host.lower().rstrip(".") in policy.allowed_hosts
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = policy.refuse_address(ipaddress.ip_address(address), host_allowed=host_allowed)
        if reason:
            raise EgressRefusedError(reason)
    return addresses[0] if addresses else None


def guarded_adapter(policy: EgressPolicy, *, pool_maxsize: int) -> HTTPAdapter:
    """An adapter whose every new connection is checked against `policy`."""

    def pin(connection: HTTPConnection) -> None:
        # urllib3 connects to `_dns_host` and verifies TLS against `host`; the
        # original name is kept so a reconnect resolves and checks it again.
        name = connection.__dict__.setdefault("_taskq_name", connection._dns_host)
        address = checked_address(policy, name, connection.port)
        connection._dns_host = address or name

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            pin(self)
            return super()._new_conn()

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            pin(self)
            return super()._new_conn()

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": GuardedHTTPConnectionPool,
                "https": GuardedHTTPSConnectionPool,
            }

    return GuardedAdapter(pool_connections=16, pool_maxsize=pool_maxsize)
