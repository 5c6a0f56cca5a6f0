"""POST /tasks and GET /tasks/{id} through HTTP against a real database with PGMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.models import QueuedCall
from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, batch, counts, queue_length


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def test_submit_queues_one_message_per_payload_with_status_rows(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    response = client.post("/tasks", json=batch(3, task_type="update-resource"))

    assert response.status_code == 201
    body = response.json()
    assert uuid.UUID(body["task_id"])
    assert len(body["message_ids"]) == 3
    assert body["message_ids"] == sorted(body["message_ids"])
    assert queue_length(db_dsn, "update-resource") == 3
    assert counts(db_dsn) == (3, 1, 1)


def test_queued_message_is_the_resolved_call(client: TestClient[Litestar], db_dsn: str) -> None:
    body = {
        "task_type": "t",
        "item_id": "abc123",
        "url": "https://api.example.com",
        "method": "PATCH",
        "headers": {"Authorization": "Bearer token"},
        "timeout": "1500ms",
        "max_retries": 2,
        "retry_delay": 100,
        "payloads": [
            {
                "data": {"accountId": "1"},
                "api_override": {
                    "url": "https://override.example.com",
                    "headers": {"Authorization": "Bearer different-token"},
                },
            }
        ],
    }
    task_id = client.post("/tasks", json=body).json()["task_id"]

    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(SQL["test_take_all"], {"queue": queue_name_for("t")}).fetchall()
    (call,) = [msgspec.json.decode(text, type=QueuedCall) for _, text in rows]
    assert call == QueuedCall(
        task_id=task_id,
        payload_id=0,
        task_type="t",
        url="https://override.example.com",
        method="PATCH",
        headers={"Authorization": "Bearer different-token"},
        data={"accountId": "1"},
        item_id="abc123",
        timeout_ms=1500,
        max_retries=2,
        retry_delay_ms=100,
    )


def test_status_lists_every_payload_in_order_without_headers(client: TestClient[Litestar]) -> None:
    body = batch(3, task_type="update-resource")
    body["headers"] = {"Authorization": "Bearer secret-token"}
    created = client.post("/tasks", json=body).json()

    response = client.get(f"/tasks/{created['task_id']}")

    assert response.status_code == 200
    view = response.json()
    assert view["task_id"] == created["task_id"]
    assert [s["payload_id"] for s in view["statuses"]] == [0, 1, 2]
    assert [s["message_id"] for s in view["statuses"]] == created["message_ids"]
    first = view["statuses"][0]
    assert {
        "message_id",
        "item_id",
        "task_type",
        "payload",
        "status",
        "error",
        "attempt",
        "updated_at",
        "payload_id",
        "http_status",
        "duration_ms",
        "created_at",
        "dlq_message_id",
        "scheduled_for",
        "response",
        "snoozes",
        "callback",
    } == set(first)
    assert first["payload"] == {"n": 0}
    assert first["snoozes"] == 0
    assert (first["status"], first["error"], first["attempt"]) == ("pending", "", 0)
    assert (first["item_id"], first["task_type"]) == ("item-1", "update-resource")
    assert "secret-token" not in response.text


def test_unknown_task_is_404_json(client: TestClient[Litestar]) -> None:
    response = client.get(f"/tasks/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_known_type_is_cached_and_new_type_gets_its_own_queue(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    for _ in range(3):
        assert client.post("/tasks", json=batch(2, task_type="a")).status_code == 201
    assert client.post("/tasks", json=batch(1, task_type="b")).status_code == 201
    assert (queue_length(db_dsn, "a"), queue_length(db_dsn, "b")) == (6, 1)
    assert counts(db_dsn) == (7, 2, 2)


def test_batch_max_rps_sets_the_type_limit_unless_configured(client: TestClient[Litestar]) -> None:
    client.post("/tasks", json={**batch(1, task_type="r"), "max_rps": 5})
    assert client.get("/task-types/r").json()["max_rps"] == 5.0

    client.post("/task-types", json={"task_type": "r", "max_rps": 2})
    client.post("/tasks", json={**batch(1, task_type="r"), "max_rps": 50})
    assert client.get("/task-types/r").json()["max_rps"] == 2.0


def test_a_batch_the_database_rejects_leaves_nothing_behind(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    # PostgreSQL's jsonb refuses \u0000: the last payload fails inside the
    # transaction that already registered the new type and created its queue.
    body = batch(3, task_type="atomic")
    body["payloads"][2]["data"] = {"text": "nul\u0000"}

    response = client.post("/tasks", json=body)

    assert response.status_code == 400
    assert response.json()["field"] == "payloads"
    assert counts(db_dsn) == (0, 0, 0)
    # The failed registration was not cached: the type still works afterwards.
    assert client.post("/tasks", json=batch(2, task_type="atomic")).status_code == 201
    assert queue_length(db_dsn, "atomic") == 2
    assert counts(db_dsn) == (2, 1, 1)


def test_readme_example_body_is_accepted(client: TestClient[Litestar]) -> None:
    body = {
        "item_id": "abc123",
        "task_type": "update-resource",
        "max_retries": 3,
        "retry_delay": 1000,
        "url": "https://api.example.com",
        "method": "POST",
        "headers": {"Authorization": "Bearer token"},
        "payloads": [
            {
                "data": {"accountId": "1", "accountType": "savings"},
                "api_override": {
                    "url": "https://override.example.com",
                    "headers": {"Authorization": "Bearer different-token"},
                },
            },
            {"data": {"accountId": "2", "accountType": "checking"}},
            {"data": {"accountId": "3", "accountType": "checking"}},
        ],
    }
    response = client.post("/tasks", json=body)
    assert response.status_code == 201
    assert len(response.json()["message_ids"]) == 3


def test_submission_wakes_listening_workers_at_commit(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute(SQL["test_listen_work"])
        created = client.post("/tasks", json=batch(2, task_type="wake"))
        assert created.status_code == 201
        payloads = [note.payload for note in listener.notifies(timeout=5, stop_after=1)]
    assert payloads == [queue_name_for("wake")]
