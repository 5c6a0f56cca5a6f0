"""Which addresses taskq may call: the policy against SSRF, shared by the API and the worker.

Off by default (the reference calls anything). With EGRESS_BLOCK_PRIVATE on,
loopback, private, link-local (cloud metadata at 169.254.169.254 included),
multicast, reserved and unspecified addresses are refused unless
EGRESS_ALLOWLIST names them; a non-empty allowlist also limits calls to the
hosts and networks it names. The worker checks the address it actually
connects to, after DNS resolution, so a name cannot be re-pointed in between.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from taskq_core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Metadata endpoints that are not in a private range on every cloud.
_METADATA = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    block_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in settings.egress_allowlist:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(settings.egress_block_private, frozenset(hosts), tuple(networks))

    @property
    def active(self) -> bool:
        return self.block_private or bool(self.allowed_hosts or self.allowed_networks)

    def refuse_host(self, host: str) -> str | None:
        """Why a URL's host is refused before any lookup, or None if it may be resolved."""
        name = host.lower().rstrip(".")
        if not self.active or name in self.allowed_hosts:
            return None
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return self._refuse_name(host, name)
        return self.refuse_address(address, host_allowed=False)

    def _refuse_name(self, host: str, name: str) -> str | None:
        if self.allowed_hosts and not self.allowed_networks:
            return f"host {host!r} is not in EGRESS_ALLOWLIST"
        if self.block_private and (name == "localhost" or name.endswith(".localhost")):
            return f"host {host!r} is a loopback name"
        # Anything else is decided on the resolved address, at connect time.
        return None

    def refuse_address(self, address: IPAddress, *, host_allowed: bool) -> str | None:
        """Why connecting to `address` is refused, or None. `host_allowed`: its name was listed."""
        if not self.active or host_allowed:
            return None
        if any(address in network for network in self.allowed_networks):
            return None
        if self.allowed_hosts or self.allowed_networks:
            return f"address {address} is not in EGRESS_ALLOWLIST"
        if self.block_private and _is_internal(address):
            return f"address {address} is in a blocked range (loopback, private or link-local)"
        return None

    def refuse_url(self, url: str) -> str | None:
        """The submission-time check: what can be decided without DNS."""
        host = urlsplit(url).hostname
        return None if host is None else self.refuse_host(host)


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _is_internal(address.ipv4_mapped)
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in network for network in _METADATA)
    )
