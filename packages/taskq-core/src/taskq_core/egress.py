"""Which addresses taskq may call: the policy against SSRF, shared by the API and the worker.

Always refused, with no setting: link-local addresses and cloud metadata
endpoints (never a legitimate target, and the classic SSRF prize). With
EGRESS_BLOCK_PRIVATE, every address that is not globally reachable is refused
too (loopback, private, shared 100.64.0.0/10, reserved, multicast, ...).
EGRESS_ALLOWLIST opens the networks it lists, even the always-refused ones,
and limits calls to what it names. An IPv6 address that embeds an IPv4 one
(mapped, compatible, 6to4, NAT64) is judged by the IPv4 address it reaches.
The worker checks the address it actually connects to, after DNS resolution.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from taskq_core.numeric_host import numeric_ipv4
from taskq_core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Metadata endpoints outside the link-local ranges: Alibaba Cloud, AWS over
# IPv6 (Nitro), Oracle Cloud's legacy address.
_METADATA = tuple(
    ipaddress.ip_network(network)
    for network in ("100.100.100.200/32", "fd00:ec2::254/128", "192.0.0.192/32")
)
# Not globally reachable, yet missing from Python 3.11's tables: IETF protocol
# assignments, the 6to4 relay anycast, local-use NAT64 (whose embedding
# depends on a prefix length we cannot know).
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in ("192.0.0.0/24", "192.88.99.0/24", "64:ff9b:1::/48")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


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
    def configured(self) -> bool:
        """Whether a setting asks for more than the always-on refusals."""
        return self.block_private or bool(self.allowed_hosts or self.allowed_networks)

    def refuse_host(self, host: str) -> str | None:
        """Why a URL's host is refused before any lookup, or None if it may be resolved."""
        name = host.lower().rstrip(".")
        if name in self.allowed_hosts:
            return None
        address = literal_address(name)
        if address is None:
            return self._refuse_name(host, name)
        reason = self.refuse_address(address, host_allowed=False)
        if reason and str(address) != name.strip("[]"):
            return f"host {host!r} is {address}: {reason}"  # say how 0x7f.1 was read
        return reason

    def _refuse_name(self, host: str, name: str) -> str | None:
        if self.allowed_hosts and not self.allowed_networks:
            return f"host {host!r} is not in EGRESS_ALLOWLIST"
        if self.block_private and (name == "localhost" or name.endswith(".localhost")):
            return f"host {host!r} is a loopback name"
        # Anything else is decided on the resolved address, at connect time.
        return None

    def refuse_address(self, address: IPAddress, *, host_allowed: bool) -> str | None:
        """Why connecting to `address` is refused, or None. `host_allowed`: its name was listed."""
        reached = _reached(address)
        listed = (address, *reached)
        if any(ip in network for ip in listed for network in self.allowed_networks):
            return None
        # A listed name does not open these: its DNS could point anywhere.
        if any(_never_legitimate(ip) for ip in reached):
            return (
                f"address {address} is link-local or a cloud metadata endpoint"
                " (refused unless EGRESS_ALLOWLIST lists its network)"
            )
        if host_allowed:
            return None
        if self.allowed_hosts or self.allowed_networks:
            return f"address {address} is not in EGRESS_ALLOWLIST"
        if self.block_private and any(_not_global(ip) for ip in reached):
            return f"address {address} is not a public address (EGRESS_BLOCK_PRIVATE)"
        return None

    def refuse_url(self, url: str) -> str | None:
        """The submission-time check: what can be decided without DNS."""
        host = urlsplit(url).hostname
        return None if host is None else self.refuse_host(host)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal, or a number inet_aton reads."""
    if not host.isascii():
        # IDNA maps fullwidth digits and ideographic full stops to ASCII ones:
        # fullwidth "127" is 127 to any client that encodes the name.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return numeric_ipv4(host)


def _reached(address: IPAddress) -> tuple[IPAddress, ...]:
    """`address`, or the IPv4 address it leads to when it embeds one."""
    if isinstance(address, ipaddress.IPv4Address):
        return (address,)
    embedded = address.ipv4_mapped or address.sixtofour
    # :: and ::1 are themselves, not IPv4 addresses.
    translated = address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1)
    if embedded is None and translated:
        embedded = ipaddress.IPv4Address(address.packed[-4:])
    if embedded is None and address.teredo is not None:
        return (address, *address.teredo)
    return (address,) if embedded is None else (embedded,)


def _never_legitimate(address: IPAddress) -> bool:
    return address.is_link_local or any(address in network for network in _METADATA)


def _not_global(address: IPAddress) -> bool:
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or any(address in network for network in _NOT_GLOBAL)
        or any(address in network for network in _METADATA)
    )
