"""Schemathesis drives every operation of the served OpenAPI spec against the real server.

Positive and negative cases (schema-valid and schema-violating input), with an
API key set, against `taskq-api` under granian on 127.0.0.1 with a migrated
database of its own. Every response must be a non-5xx that the spec declares,
with the declared content type, headers and body schema. FUZZ_EXAMPLES sets
the examples per operation (CI keeps it small; `make fuzz` raises it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from taskq_core.settings import Settings
from tests.support.api_process import running_api
from tests.support.databases import DLQ, create_database, drop_database

pytestmark = pytest.mark.e2e

API_KEY = "fuzz-key-" + "k" * 24
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SPEC = Path(__file__).parents[2] / "docs" / "openapi.json"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.ignored_auth,
]
"""Every check that says "the response contradicts the spec" or "the server broke".

positive_data_acceptance is left out on purpose: the spec cannot express every
rule a valid batch obeys (an http(s) url with a host, RFC 9110 header names,
a Go duration string), so a schema-valid body may rightly get a 400.
"""


@pytest.fixture(scope="module")
def api_base_url(
    pg_admin_dsn: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    name = f"taskq_fuzz_{uuid.uuid4().hex[:12]}"
    dsn = create_database(pg_admin_dsn, name, template=template_database)
    log = tmp_path_factory.mktemp("fuzz") / "api.log"
    try:
        with running_api(
            Settings(postgres_dsn=dsn, dlq_queue_name=DLQ),
            log,
            API_KEYS=API_KEY,
            MAX_PAYLOADS=50,
            MAX_BODY_SIZE="64KiB",
        ) as (base_url, _):
            yield base_url
        assert "API_KEYS is not set" not in log.read_text()
    finally:
        drop_database(pg_admin_dsn, name)


def load_schema() -> Any:
    """The committed spec (a test keeps it equal to the served one), both kinds of input."""
    config = SchemathesisConfig()
    config.projects.default.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    )
    return schemathesis.openapi.from_path(SPEC, config=config)


schema = load_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_and_never_fails(case: Any, api_base_url: str) -> None:
    case.call_and_validate(base_url=api_base_url, headers=AUTH, checks=CHECKS, timeout=10)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


_BATCH = b'{"url": "http://example.com/", "payloads": [{"data": 1}]'
HOSTILE_EXAMPLES: list[tuple[str, bytes, str, int]] = [
    # (path, raw POST body, media type, expected status): issue 11 items 7, 10 and 13.
    ("/tasks", _BATCH + b', "timeout": "' + b"9" * 400 + b'"}', "application/json", 400),
    ("/tasks", _BATCH + b', "timeout": "' + b"9" * 400 + b'h"}', "application/json", 400),
    ("/tasks", _BATCH + b', "timeout": ' + b"9" * 400 + b"}", "application/json", 400),
    ("/tasks", _BATCH + b', "item_id": "\xff\xfe"}', "application/json", 400),
    ("/tasks", _BATCH + b', "x": ' + _nested(5000) + b"}", "application/json", 400),
    ("/tasks", _nested(5000), "application/json", 400),
    ("/tasks", _BATCH + b', "headers": {"X-A": "\xe2\x82\xac"}}', "application/json", 400),
    ("/tasks", _BATCH + b', "headers": {"X-A": "a\\r\\nB: c"}}', "application/json", 400),
    ("/tasks", _BATCH + b', "task_type": "a/b"}', "application/json", 400),
    ("/tasks", _BATCH + b"}", "text/plain", 415),
    ("/task-types", b'{"task_type": "\xc3\x28"}', "application/json", 400),
    ("/task-types", _nested(5000), "application/json", 400),
    ("/task-types", b'{"task_type": "x"}', "text/plain", 415),
    ("/dlq/reprocess", b'{"task_type": "\xff"}', "application/json", 400),
    ("/dlq/reprocess", b'{"task_type": ' + _nested(5000) + b"}", "application/json", 400),
    ("/dlq/reprocess", b'{"task_type": "x"}', "text/plain", 415),
]


@pytest.mark.parametrize(
    ("path", "body", "media_type", "status"),
    HOSTILE_EXAMPLES,
    ids=[f"{path}-{n}" for n, (path, *_) in enumerate(HOSTILE_EXAMPLES)],
)
def test_explicit_hostile_examples_get_the_declared_4xx(
    api_base_url: str, path: str, body: bytes, media_type: str, status: int
) -> None:
    """Inputs the generators would rarely reach, sent through the same checks as the fuzz run."""
    case = schema[path]["POST"].Case(body=body, media_type=media_type)
    response = case.call_and_validate(
        base_url=api_base_url, headers=AUTH, checks=CHECKS, timeout=10
    )
    assert response.status_code == status, response.text
    assert response.json()["status_code"] == status


@pytest.mark.parametrize("task_id", ["not-a-uuid", "0" * 500])
def test_explicit_malformed_task_id_is_400(api_base_url: str, task_id: str) -> None:
    case = schema["/tasks/{task_id}"]["GET"].Case(path_parameters={"task_id": task_id})
    response = case.call_and_validate(
        base_url=api_base_url, headers=AUTH, checks=CHECKS, timeout=10
    )
    assert (response.status_code, response.json()["field"]) == (400, "task_id")
