from __future__ import annotations

import ipaddress

import pytest

from taskq_core.egress import EgressPolicy
from taskq_core.settings import Settings


def policy(**settings: object) -> EgressPolicy:
    return EgressPolicy.from_settings(Settings(**settings))  # type: ignore[arg-type]


def test_off_by_default() -> None:
    assert not policy().active
    assert policy().refuse_url("http://127.0.0.1/x") is None
    assert policy().refuse_url("http://169.254.169.254/latest/meta-data") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
        "http://localhost:8080/",
        "http://api.localhost/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.100.100.200/",
    ],
)
def test_blocking_refuses_internal_targets(url: str) -> None:
    assert policy(egress_block_private=True).refuse_url(url) is not None


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
    assert allow.refuse_url("https://partner.example/hook") is None
    assert allow.refuse_url("http://10.0.0.1/") is not None
    assert allow.refuse_address(ipaddress.ip_address("8.8.8.8"), host_allowed=False)


def test_allowlist_of_names_refuses_other_names_at_submission() -> None:
    allow = policy(egress_allowlist=("partner.example",))
    assert allow.refuse_url("https://partner.example/x") is None
    assert allow.refuse_url("https://other.example/x") is not None
