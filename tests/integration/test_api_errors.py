"""Bad input never reaches the database and always gets the one JSON error shape."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client, batch, counts

ERROR_KEYS = {"status_code", "error", "detail", "field"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(replace(settings, max_payloads=5, max_body_size=4096)) as test_client:
        yield test_client


def post_raw(client: TestClient[Litestar], body: bytes | str) -> tuple[int, dict[str, object]]:
    response = client.post("/tasks", content=body, headers={"Content-Type": "application/json"})
    payload = response.json()
    assert set(payload) == ERROR_KEYS
    assert payload["status_code"] == response.status_code
    return response.status_code, payload


def with_fields(**fields: object) -> str:
    return json.dumps({**batch(1), **fields})


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ("", 400, None),
        ("[]", 400, None),
        (json.dumps({"payloads": [{"data": 1}]}), 400, "url"),
        (with_fields(url=5), 400, "url"),
        (with_fields(url="ftp://example.com/x"), 400, "url"),
        (with_fields(url="not a url"), 400, "url"),
        (with_fields(method="TRACE"), 400, "method"),
        (with_fields(max_retries="three"), 400, "max_retries"),
        (with_fields(max_retries=-1), 400, "max_retries"),
        (with_fields(timeout="soon"), 400, "timeout"),
        (with_fields(headers={"X-A": 1}), 400, "headers"),
        (with_fields(headers={"X-A": "a\nb"}), 400, "headers.X-A"),
        (with_fields(payloads=[]), 400, "payloads"),
        (with_fields(payloads="all of them"), 400, "payloads"),
        (with_fields(payloads=[{"data": 1}] * 6), 400, "payloads"),
        (
            with_fields(payloads=[{"data": 1}, {"api_override": {"method": 7}}]),
            400,
            "payloads[1].api_override.method",
        ),
        (
            with_fields(payloads=[{"api_override": {"url": "gopher://x"}}]),
            400,
            "payloads[0].api_override.url",
        ),
        (with_fields(max_rps=0), 400, "max_rps"),
        (with_fields(task_type=""), 400, "task_type"),
    ],
)
def test_bad_submission_is_rejected_naming_the_field(
    client: TestClient[Litestar], db_dsn: str, body: str, status: int, field: str | None
) -> None:
    code, payload = post_raw(client, body)
    assert code == status
    assert payload["field"] == field
    if field is not None:
        assert field in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


def test_body_over_the_limit_is_413(client: TestClient[Litestar], db_dsn: str) -> None:
    code, payload = post_raw(client, with_fields(item_id="x" * 5000))
    assert code == 413
    assert payload["error"] == "payload_too_large"
    assert counts(db_dsn) == (0, 0, 0)


def test_unknown_route_and_wrong_method_use_the_error_shape(client: TestClient[Litestar]) -> None:
    missing = client.get("/nothing-here")
    wrong = client.delete("/tasks")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
    assert set(wrong.json()) == ERROR_KEYS


def test_dlq_reprocess_needs_a_selector(client: TestClient[Litestar]) -> None:
    response = client.post("/dlq/reprocess", json={})
    assert response.status_code == 400
    assert response.json()["field"] == "task_type"
    bad_id = client.post("/dlq/reprocess", json={"task_id": "nope"})
    assert (bad_id.status_code, bad_id.json()["field"]) == (400, "task_id")


def test_task_type_body_is_validated(client: TestClient[Litestar]) -> None:
    response = client.post("/task-types", json={"task_type": "x", "max_rps": -3})
    assert (response.status_code, response.json()["field"]) == (400, "max_rps")
    missing = client.post("/task-types", json={"max_rps": 3})
    assert (missing.status_code, missing.json()["field"]) == (400, "task_type")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_database_down_is_503_quickly(settings: Settings) -> None:
    down = replace(settings, postgres_dsn=f"postgresql://postgres@127.0.0.1:{closed_port()}/x")
    with api_client(down) as client:
        for method, path, body in [
            ("POST", "/tasks", batch(1)),
            ("GET", "/tasks/123e4567-e89b-12d3-a456-426614174000", None),
            ("GET", "/task-types/x", None),
            ("POST", "/dlq/reprocess", {"task_type": "x"}),
            ("GET", "/health/ready", None),
        ]:
            started = time.monotonic()
            response = client.request(method, path, json=body)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, path
            assert response.json()["error"] == "database_unavailable"
            assert set(response.json()) == ERROR_KEYS
            assert elapsed < 5, f"{path} took {elapsed:.1f}s"
        assert client.get("/health/live").status_code == 200
