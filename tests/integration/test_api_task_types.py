"""POST /task-types upserts a type's global limit; GET /task-types/{type} reads it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client, batch, counts, queue_length


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def test_configure_then_read_returns_the_reference_shape(client: TestClient[Litestar]) -> None:
    created = client.post("/task-types", json={"task_type": "update-resource", "max_rps": 10.0})

    assert created.status_code == 200
    body = created.json()
    assert set(body) == {
        "task_type",
        "max_rps",
        "created_at",
        "updated_at",
        "signed",
        "adaptive",
        "allowed_rps",
    }
    assert body["signed"] is False
    assert (body["adaptive"], body["allowed_rps"]) == (False, 10.0)
    assert (body["task_type"], body["max_rps"]) == ("update-resource", 10.0)
    datetime.fromisoformat(body["created_at"])
    read = client.get("/task-types/update-resource")
    assert (read.status_code, read.json()) == (200, body)


def test_upsert_changes_the_limit_and_keeps_created_at(client: TestClient[Litestar]) -> None:
    first = client.post("/task-types", json={"task_type": "t", "max_rps": 1}).json()
    second = client.post("/task-types", json={"task_type": "t", "max_rps": 2.5}).json()
    unlimited = client.post("/task-types", json={"task_type": "t", "max_rps": None}).json()

    assert second["max_rps"] == 2.5
    assert unlimited["max_rps"] is None
    assert first["created_at"] == second["created_at"] == unlimited["created_at"]
    assert unlimited["updated_at"] >= second["updated_at"] >= first["updated_at"]


def test_configured_type_has_a_queue_that_submissions_use(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    client.post("/task-types", json={"task_type": "fresh", "max_rps": 3})
    assert client.post("/tasks", json=batch(2, task_type="fresh")).status_code == 201
    assert queue_length(db_dsn, "fresh") == 2
    assert counts(db_dsn) == (2, 1, 1)


def test_unknown_type_is_404(client: TestClient[Litestar]) -> None:
    response = client.get("/task-types/never-seen")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_submitted_type_is_listed_without_a_limit(client: TestClient[Litestar]) -> None:
    client.post("/tasks", json=batch(1, task_type="implicit"))
    assert client.get("/task-types/implicit").json()["max_rps"] is None


def test_delivery_defaults_are_stored_and_shown_with_secrets_redacted(
    client: TestClient[Litestar],
) -> None:
    body = {
        "task_type": "partner",
        "max_rps": 5,
        "max_retries": 7,
        "retry_delay": 250,
        "retry_max_delay": 30_000,
        "timeout": "15s",
        "retryable_status_codes": [503, 502, 503, 429],
        "headers": {"Authorization": "Bearer s3cr3t-value", "X-Tenant": "acme"},
    }
    created = client.post("/task-types", json=body)
    assert created.status_code == 200, created.text
    shown = created.json()
    assert shown["max_retries"] == 7
    assert (shown["retry_delay"], shown["retry_max_delay"], shown["timeout"]) == (
        250,
        30_000,
        15_000,
    )
    assert shown["retryable_status_codes"] == [429, 502, 503]
    assert shown["headers"] == {"Authorization": "[redacted]", "X-Tenant": "acme"}
    assert "s3cr3t-value" not in created.text
    assert client.get("/task-types/partner").json() == shown
    # Each POST replaces the defaults: the reference's body alone clears them.
    cleared = client.post("/task-types", json={"task_type": "partner", "max_rps": 5}).json()
    # Only `signed` (issue 15), `adaptive` and `allowed_rps` (issue 16) are always
    # shown besides the reference's four fields.
    assert set(cleared) == {
        "task_type",
        "max_rps",
        "created_at",
        "updated_at",
        "signed",
        "adaptive",
        "allowed_rps",
    }


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 10**30}, "max_retries"),
        ({"retry_delay": "soon"}, "retry_delay"),
        ({"retry_max_delay": 0}, "retry_max_delay"),
        ({"timeout": "forever"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"retryable_status_codes": [99]}, "retryable_status_codes"),
        ({"retryable_status_codes": [600]}, "retryable_status_codes"),
        ({"retryable_status_codes": "503"}, "retryable_status_codes"),
        ({"headers": {"X-Bad": "a\r\nInjected: yes"}}, "headers.X-Bad"),
        ({"headers": {"Bad Name": "v"}}, "headers"),
        ({"headers": {"X-Nul": "a\x00b"}}, "headers.X-Nul"),
        ({"headers": {"X-Big": "v" * 10_000}}, "headers.X-Big"),
        ({"headers": {"X-Num": 5}}, "headers"),
    ],
)
def test_bad_delivery_defaults_are_refused_naming_the_field(
    client: TestClient[Litestar], extra: dict[str, object], field: str
) -> None:
    response = client.post("/task-types", json={"task_type": "strict", **extra})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["field"].startswith(field), error
    assert client.get("/task-types/strict").status_code == 404  # nothing half-written
