"""Run a real worker Supervisor in a thread of the test process, stopped cleanly afterwards."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from litestar import Litestar
from litestar.testing import TestClient
from psycopg.rows import dict_row

from taskq_core.settings import Settings
from taskq_dev.queries import DEV_QUERIES
from taskq_worker.supervisor import Supervisor


@contextmanager
def running_worker(settings: Settings, **overrides: Any) -> Iterator[Supervisor]:
    supervisor = Supervisor(dataclasses.replace(settings, **overrides))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    try:
        yield supervisor
    finally:
        supervisor.stop_event.set()
        thread.join(timeout=settings.shutdown_grace_period + 10)
        assert not thread.is_alive(), "worker did not stop"
        assert result == [0]


def submit(client: TestClient[Litestar], body: dict[str, object]) -> str:
    """POST /tasks through the real app; the new task id."""
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def submit_many(client: TestClient[Litestar], task_type: str, url: str, count: int) -> str:
    """A batch of `count` payloads ({"data": n}) of `task_type` for `url`."""
    payloads = [{"data": n} for n in range(count)]
    return submit(client, {"task_type": task_type, "url": url, "payloads": payloads})


def all_final(dsn: str, task_id: str, expected: int) -> bool:
    """Whether all `expected` messages of the task have left `pending`."""
    rows = statuses(dsn, task_id)
    return len(rows) == expected and all(row["status"] != "pending" for row in rows)


def statuses(dsn: str, task_id: str) -> list[dict[str, Any]]:
    """The status rows of a task, as the database holds them."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.cursor(row_factory=dict_row)
        return cursor.execute(DEV_QUERIES["test_statuses"], {"task_id": task_id}).fetchall()
