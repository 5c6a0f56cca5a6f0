"""Explicit examples for the schemathesis run: hostile target URLs, under the secure settings.

The generated cases of test_openapi_fuzz.py almost never produce a metadata
address or a numeric IPv4 form; these cases go through the same checks (no
5xx, nothing the spec does not declare) and must also be the 400 naming the
field that the egress policy promises.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from taskq_core.settings import Settings
from tests.fuzz.test_openapi_fuzz import API_KEY, AUTH, CHECKS, schema
from tests.support.api_process import running_api
from tests.support.databases import DLQ, create_database, drop_database

pytestmark = pytest.mark.e2e

# Refused with EGRESS_BLOCK_PRIVATE=true, as the deploy/ manifests set it.
REFUSED_HOSTS = [
    "169.254.169.254",
    "2852039166",  # 169.254.169.254
    "2130706433",
    "0x7f.1",
    "017700000001",
    "127.1",
    "0",
    "100.64.0.1",
    "100.100.100.200",
    "[::ffff:127.0.0.1]",
    "[::7f00:1]",
    "[2002:a9fe:a9fe::]",
    "[64:ff9b::a00:1]",
    "[fd00:ec2::254]",
    "[fe80::1]",
    "localhost",
]


@pytest.fixture(scope="module")
def guarded_api(
    pg_admin_dsn: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    name = f"taskq_fuzz_{uuid.uuid4().hex[:12]}"
    dsn = create_database(pg_admin_dsn, name, template=template_database)
    log = tmp_path_factory.mktemp("fuzz-egress") / "api.log"
    try:
        with running_api(
            Settings(postgres_dsn=dsn, dlq_queue_name=DLQ),
            log,
            API_KEYS=API_KEY,
            EGRESS_BLOCK_PRIVATE="true",
        ) as (base_url, _):
            yield base_url
    finally:
        drop_database(pg_admin_dsn, name)


def tasks_case(body: dict[str, Any]) -> Any:
    return schema["/tasks"]["POST"].Case(body=body, media_type="application/json")


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_refused_targets_are_a_400_naming_the_field(guarded_api: str, host: str) -> None:
    url = f"http://{host}:8080/hook"
    for body, field in (
        ({"url": url, "payloads": [{"data": 1}]}, "url"),
        (
            {"url": "https://api.example.com/x", "payloads": [{"api_override": {"url": url}}]},
            "payloads[0].api_override.url",
        ),
    ):
        response = tasks_case(body).call_and_validate(
            base_url=guarded_api, headers=AUTH, checks=CHECKS, timeout=10
        )
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field
