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
    assert set(body) == {"task_type", "max_rps", "created_at", "updated_at", "signed"}
    assert body["signed"] is False
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
