"""POST /dlq/reprocess: failed messages go back to work exactly once, in bounded chunks."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import (
    api_client,
    batch,
    dlq_length,
    fail_everything,
    queue_length,
    statuses,
)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def submit_and_fail(
    client: TestClient[Litestar], settings: Settings, count: int, task_type: str
) -> dict[str, Any]:
    created: dict[str, Any] = client.post("/tasks", json=batch(count, task_type=task_type)).json()
    assert fail_everything(settings.postgres_dsn, task_type, settings.dlq_queue_name) == count
    return created


def test_reprocess_by_type_requeues_and_resets_status(
    client: TestClient[Litestar], settings: Settings
) -> None:
    created = submit_and_fail(client, settings, 3, "update-resource")
    other = submit_and_fail(client, settings, 2, "other")

    response = client.post("/dlq/reprocess", json={"task_type": "update-resource"})

    assert response.status_code == 200
    body = response.json()
    assert body["reprocessed_count"] == 3
    assert len(set(body["message_ids"])) == 3
    dsn = settings.postgres_dsn
    assert queue_length(dsn, "update-resource") == 3
    assert dlq_length(dsn, settings.dlq_queue_name) == 2
    rows = statuses(dsn, created["task_id"])
    assert [(status, attempt) for status, attempt, _ in rows] == [("pending", 0)] * 3
    assert sorted(message_id for _, _, message_id in rows) == sorted(body["message_ids"])
    assert {status for status, _, _ in statuses(dsn, other["task_id"])} == {"failed"}
    view = client.get(f"/tasks/{created['task_id']}").json()
    assert [s["message_id"] for s in view["statuses"]] == [m for _, _, m in rows]


def test_reprocess_by_task_id_takes_only_that_task(
    client: TestClient[Litestar], settings: Settings
) -> None:
    first = client.post("/tasks", json=batch(2, task_type="t")).json()
    client.post("/tasks", json=batch(3, task_type="t"))
    fail_everything(settings.postgres_dsn, "t", settings.dlq_queue_name)

    body = client.post("/dlq/reprocess", json={"task_id": first["task_id"]}).json()

    assert body["reprocessed_count"] == 2
    assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 3
    both = client.post("/dlq/reprocess", json={"task_id": first["task_id"], "task_type": "t"})
    assert both.json() == {"reprocessed_count": 0, "message_ids": []}


def test_reprocess_twice_requeues_once(client: TestClient[Litestar], settings: Settings) -> None:
    submit_and_fail(client, settings, 4, "t")
    first = client.post("/dlq/reprocess", json={"task_type": "t"}).json()
    second = client.post("/dlq/reprocess", json={"task_type": "t"}).json()
    assert (first["reprocessed_count"], second["reprocessed_count"]) == (4, 0)
    assert queue_length(settings.postgres_dsn, "t") == 4


def test_concurrent_reprocess_never_takes_a_message_twice(settings: Settings) -> None:
    # Several chunks each, so the calls interleave transaction by transaction.
    with api_client(settings) as client:
        total = 1200
        for _ in range(3):
            submit_and_fail(client, settings, total // 3, "bulk")

        def reprocess(_: int) -> dict[str, Any]:
            result: dict[str, Any] = client.post(
                "/dlq/reprocess", json={"task_type": "bulk"}
            ).json()
            return result

        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(reprocess, range(3)))

    ids = [message_id for result in results for message_id in result["message_ids"]]
    assert sum(result["reprocessed_count"] for result in results) == total
    assert len(ids) == len(set(ids)) == total
    assert queue_length(settings.postgres_dsn, "bulk") == total
    assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 0
