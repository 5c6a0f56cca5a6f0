"""Tests may reach only this machine: a connect to any other address fails before a packet leaves.

An egress test that checks a refusal (a metadata address, say) would otherwise
send real traffic off the machine the day the guard under test regresses.
Processes the tests start are not covered; their targets are checked by the
tests themselves.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any


def is_loopback(address: Any) -> bool:
    """Whether a socket address is on this machine (a Unix socket, or a loopback IP)."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX path
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False  # a name: sockets connect to addresses, never to names
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def guarded(connect: Callable[..., Any]) -> Callable[..., Any]:
    def connect_locally(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address):
            raise OSError(errno.ENETUNREACH, f"tests may connect only to loopback, not {address}")
        return connect(sock, address)

    return connect_locally
