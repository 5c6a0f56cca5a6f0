from __future__ import annotations

import ipaddress
import socket

import pytest

from taskq_core.egress import EgressPolicy
from taskq_core.numeric_host import numeric_ipv4
from taskq_core.settings import Settings


def policy(**settings: object) -> EgressPolicy:
    return EgressPolicy.from_settings(Settings(**settings))  # type: ignore[arg-type]


NEVER_LEGITIMATE = [
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.0.1/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://192.0.0.192/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::a9fe:a9fe]/",  # IPv4-compatible
    "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
]


@pytest.mark.parametrize("url", NEVER_LEGITIMATE)
def test_link_local_and_metadata_are_refused_with_no_setting(url: str) -> None:
    default = policy()
    assert not default.configured
    assert default.refuse_url(url) is not None


def test_by_default_private_and_loopback_stay_allowed() -> None:
    default = policy()
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/", "http://[::1]/", "http://localhost/"):
        assert default.refuse_url(url) is None


def test_an_allowlisted_network_opens_a_metadata_address_a_listed_name_does_not() -> None:
    opened = policy(egress_allowlist=("169.254.169.254/32",))
    assert opened.refuse_url("http://169.254.169.254/") is None
    assert opened.refuse_url("http://[::ffff:169.254.169.254]/") is None
    assert opened.refuse_url("http://169.254.169.253/") is not None
    six_to_four = policy(egress_block_private=True, egress_allowlist=("2002:a00::/24",))
    assert six_to_four.refuse_url("http://[2002:a00:1::1]/") is None  # listed as itself
    named = policy(egress_allowlist=("metadata.internal",))
    assert named.refuse_address(ipaddress.ip_address("169.254.169.254"), host_allowed=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.4/",
        "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
        "http://100.127.255.254/",
        "http://198.18.0.1/",
        "http://192.0.0.8/",
        "http://192.88.99.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[ff02::1]/",
        "http://0.0.0.0/",
        "http://localhost:8080/",
        "http://api.localhost/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::7f00:1]/",  # IPv4-compatible
        "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
        "http://[2002:c0a8:101::1]/",  # 6to4 of 192.168.1.1
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[64:ff9b::7f00:1]/",
        "http://[64:ff9b:1::1]/",  # local-use NAT64: embedding unknown
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://2130706433/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://127.1/",
        "http://0/",
        "http://0x7f000001/",
        "http://167772161/",  # 10.0.0.1
        "http://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits, 127.0.0.1 once IDNA-encoded
        "http://127\u30020\u30020\u30021/",  # ideographic full stops
    ],
)
def test_blocking_refuses_every_form_of_an_internal_target(url: str) -> None:
    assert policy(egress_block_private=True).refuse_url(url) is not None


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "2606:2800:220:1::1", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"],
)
def test_blocking_admits_public_addresses_in_every_form(address: str) -> None:
    blocking = policy(egress_block_private=True)
    assert blocking.refuse_address(ipaddress.ip_address(address), host_allowed=False) is None
    assert blocking.refuse_url("http://[2002:5db8:d822::1]/") is None  # 6to4 of a public one


def test_blocking_leaves_public_addresses_and_names_to_connect_time() -> None:
    blocking = policy(egress_block_private=True)
    assert blocking.refuse_url("http://93.184.216.34/") is None
    assert blocking.refuse_url("https://api.example.com/v1") is None
    address = ipaddress.ip_address("10.0.0.1")
    assert blocking.refuse_address(address, host_allowed=False)
    assert blocking.refuse_address(address, host_allowed=True) is None


def test_allowlist_admits_listed_hosts_and_networks_only() -> None:
    allow = policy(egress_block_private=True, egress_allowlist=("127.0.0.0/8", "partner.example"))
    assert allow.refuse_url("http://127.0.0.1:9000/") is None
    assert allow.refuse_url("http://2130706433:9000/") is None
    assert allow.refuse_url("https://partner.example/hook") is None
    assert allow.refuse_url("http://10.0.0.1/") is not None
    assert allow.refuse_address(ipaddress.ip_address("8.8.8.8"), host_allowed=False)


def test_allowlist_of_names_refuses_other_names_at_submission() -> None:
    allow = policy(egress_allowlist=("partner.example",))
    assert allow.refuse_url("https://partner.example/x") is None
    assert allow.refuse_url("https://other.example/x") is not None
    assert allow.refuse_url("https://2130706433/x") is not None


HOSTS = [
    "2130706433",
    "0x7f.1",
    "017700000001",
    "127.1",
    "0",
    "0x7F.0X1",
    "127.0.0.01",
    "1.2.65535",
    "1.16777215",
    "4294967295",
    "0x0000007f.1",
    # Not numbers to inet_aton: names (or nothing) to the resolver.
    "0x",
    "08",
    "09.1",
    "4294967296",
    "1.2.3.4.5",
    "1.2.3.",
    "1..2",
    "256.1",
    "1.2.65536",
    "1.2.3.256",
    "0x100000000",
    "1e3",
    "abc",
]


@pytest.mark.parametrize("host", HOSTS)
def test_numeric_hosts_read_as_the_resolver_reads_them(host: str) -> None:
    try:
        infos = socket.getaddrinfo(
            host, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError):  # "1..2" has an empty label: no number
        expected = None
    else:
        expected = ipaddress.IPv4Address(infos[0][4][0])
    assert numeric_ipv4(host) == expected
