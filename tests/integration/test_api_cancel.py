"""DELETE /tasks/{id} and DELETE /tasks/{id}/messages/{message_id} against a real worker.

Cancelled messages leave their queue and are never called; a message a
worker holds finishes with its real outcome; nothing is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client, batch, queue_length
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import running_worker, statuses, submit, submit_many


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def cancel(client: TestClient[Litestar], path: str) -> dict[str, Any]:
    response = client.delete(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_cancel_queued_task_empties_its_queue_and_is_idempotent(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    task_id = submit(client, batch(4, task_type="c", url=target.url))
    first = cancel(client, f"/tasks/{task_id}")
    assert first["cancelled_count"] == 4
    assert first["in_flight_count"] == 0
    assert sorted(first["cancelled_message_ids"]) == sorted(
        row["message_id"] for row in statuses(settings.postgres_dsn, task_id)
    )
    assert queue_length(settings.postgres_dsn, "c") == 0
    assert {row["status"] for row in statuses(settings.postgres_dsn, task_id)} == {"cancelled"}
    again = cancel(client, f"/tasks/{task_id}")
    assert (again["cancelled_count"], again["in_flight_count"]) == (0, 0)
    view = client.get(f"/tasks/{task_id}").json()
    assert {s["status"] for s in view["statuses"]} == {"cancelled"}

    # A worker started afterwards calls none of them.
    other = submit(client, batch(1, task_type="c", url=target.url))
    with running_worker(settings):
        wait_until(lambda: statuses(settings.postgres_dsn, other)[0]["status"] == "success")
    assert target.count() == 1


def test_cancel_one_message(client: TestClient[Litestar], settings: Settings) -> None:
    created = client.post("/tasks", json=batch(3, task_type="c")).json()
    task_id, ids = created["task_id"], created["message_ids"]
    body = cancel(client, f"/tasks/{task_id}/messages/{ids[1]}")
    assert body["cancelled_message_ids"] == [ids[1]]
    assert [row["status"] for row in statuses(settings.postgres_dsn, task_id)] == [
        "pending",
        "cancelled",
        "pending",
    ]
    assert queue_length(settings.postgres_dsn, "c") == 2
    assert cancel(client, f"/tasks/{task_id}/messages/{ids[1]}")["cancelled_count"] == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tasks/00000000-0000-0000-0000-000000000000", 404),
        ("/tasks/not-a-uuid", 400),
        ("/tasks/not-a-uuid/messages/1", 400),
        ("/tasks/00000000-0000-0000-0000-000000000000/messages/1", 404),
        ("/tasks/00000000-0000-0000-0000-000000000000/messages/x", 404),
        ("/tasks/00000000-0000-0000-0000-000000000000/messages/99999999999999999999999", 404),
        ("/tasks/00000000-0000-0000-0000-000000000000/messages/-1", 404),
    ],
)
def test_cancel_unknown_is_404(client: TestClient[Litestar], path: str, status: int) -> None:
    response = client.delete(path)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"status_code", "error", "detail", "field"}


def test_cancel_unknown_message_of_a_known_task_is_404(client: TestClient[Litestar]) -> None:
    created = client.post("/tasks", json=batch(1, task_type="c")).json()
    response = client.delete(f"/tasks/{created['task_id']}/messages/999999")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_cancel_reaches_messages_waiting_for_a_retry(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    target.responder = lambda _request: Reply(status=503)
    with running_worker(settings, retry_max_delay=60.0):
        task_id = submit(
            client,
            {"task_type": "r", "url": target.url, "retry_delay": 30_000, "payloads": [{"data": 1}]},
        )
        wait_until(lambda: statuses(settings.postgres_dsn, task_id)[0]["attempt"] == 1)
        body = cancel(client, f"/tasks/{task_id}")
    assert (body["cancelled_count"], body["in_flight_count"]) == (1, 0)
    assert statuses(settings.postgres_dsn, task_id)[0]["status"] == "cancelled"
    assert queue_length(settings.postgres_dsn, "r") == 0
    assert target.count() == 1


def test_a_held_message_keeps_its_real_outcome(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    release = threading.Event()

    def slow(_request: Received) -> Reply:
        release.wait(10)
        return Reply(status=201)

    target.responder = slow
    with running_worker(settings):
        task_id = submit(client, {"task_type": "h", "url": target.url, "payloads": [{"data": 1}]})
        wait_until(lambda: target.count() == 1)
        body = cancel(client, f"/tasks/{task_id}")
        release.set()
        wait_until(lambda: statuses(settings.postgres_dsn, task_id)[0]["status"] != "pending")
    assert (body["cancelled_count"], body["in_flight_count"]) == (0, 1)
    [row] = statuses(settings.postgres_dsn, task_id)
    assert (row["status"], row["http_status"]) == ("success", 201)


def test_cancel_while_the_worker_delivers_the_same_batch(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    """No cancelled message is ever called, none is lost, held ones finish for real."""
    target.responder = lambda _request: Reply(delay=0.005)
    total = 400
    with running_worker(settings, max_workers=4, max_queue_buffer=40):
        task_id = submit_many(client, "race", target.url, total)
        wait_until(lambda: target.count() >= 40)
        body = cancel(client, f"/tasks/{task_id}")
        cancel_returned = time.monotonic()
        wait_until(
            lambda: all(
                row["status"] != "pending" for row in statuses(settings.postgres_dsn, task_id)
            ),
            timeout=30,
        )
    rows = statuses(settings.postgres_dsn, task_id)
    by_status: dict[str, set[int]] = {}
    for row in rows:
        by_status.setdefault(row["status"], set()).add(row["payload_id"])
    cancelled = by_status.get("cancelled", set())
    succeeded = by_status.get("success", set())
    assert len(cancelled) == body["cancelled_count"] > 0
    assert len(cancelled) + len(succeeded) == total  # nothing lost, nothing failed
    called = [
        (int(request.headers["idempotency-key"].split(":")[1]), request.at)
        for request in target.requests_snapshot()
    ]
    assert not cancelled & {payload for payload, _ in called}
    assert {payload for payload, _ in called} == succeeded
    late = {payload for payload, at in called if at > cancel_returned}
    assert late <= succeeded
    held = {
        row["payload_id"] for row in rows if row["message_id"] in set(body["in_flight_message_ids"])
    }
    assert held <= succeeded
    assert queue_length(settings.postgres_dsn, "race") == 0
