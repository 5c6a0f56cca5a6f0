"""Callbacks are enqueued by the worker's outcome transaction itself (issue 15), once.

These drive the worker's repository directly with outcomes, as its recorder does,
against the real database: what a crash or a late duplicate would leave.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from taskq_core.deliveries import Delivery, Failed, Succeeded
from taskq_core.errors import DatabaseError
from taskq_core.repository.worker import WorkerRepository
from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, queue_length
from tests.support.databases import DLQ
from tests.support.target import wait_until
from tests.support.worker import statuses, submit


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(db_dsn, min_size=1, max_size=2, open=True) as opened:
        yield opened


def _callbacks(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(SQL["test_callbacks"]).fetchall()


def _read(repository: WorkerRepository, task_type: str) -> list[Delivery]:
    (route,) = [route for route in repository.routes() if route.task_type == task_type]
    return repository.read(route, 10, 30).deliveries


def _submit(settings: Settings, count: int = 1) -> str:
    with api_client(settings) as client:
        return submit(
            client,
            {
                "task_type": "t",
                "url": "http://127.0.0.1:9/x",
                "callback_url": "http://127.0.0.1:9/ok",
                "failure_callback_url": "http://127.0.0.1:9/failed",
                "payloads": [{"data": n} for n in range(count)],
            },
        )


def test_a_duplicate_outcome_enqueues_no_second_callback(
    settings: Settings, pool: ConnectionPool
) -> None:
    task_id = _submit(settings)
    repository = WorkerRepository(pool, dlq_queue_name=DLQ)
    (delivery,) = _read(repository, "t")
    repository.record([Succeeded(delivery, 200, 3.0)])
    repository.record([Succeeded(delivery, 200, 3.0)])  # a second worker, after a timeout
    repository.record([Failed(delivery, "HTTP 500", 500, 3.0)])  # or a late failure

    ((_, _, origin, kind, callback_id, status, attempt),) = _callbacks(settings.postgres_dsn)
    assert (origin, kind, status, attempt) == (delivery.message_id, "success", "pending", 0)
    assert queue_length(settings.postgres_dsn, "t:callbacks") == 1
    assert statuses(settings.postgres_dsn, task_id)[0]["status"] == "success"

    (callback,) = _read(repository, "t:callbacks")
    assert callback.message_id == callback_id
    assert callback.call is not None
    assert callback.call.callback_of == "t"
    assert callback.call.callback_url is None  # a callback never calls back
    repository.record([Succeeded(callback, 204, 1.0)])
    ((*_, status, attempt),) = _callbacks(settings.postgres_dsn)
    assert (status, attempt) == ("success", 0)
    assert queue_length(settings.postgres_dsn, "t:callbacks") == 0
    assert _read(repository, "t:callbacks") == []


def test_an_outcome_that_is_not_written_enqueues_no_callback(
    settings: Settings, pool: ConnectionPool
) -> None:
    """A failed write (here: its DLQ is missing) rolls back the callbacks with the outcomes."""
    task_id = _submit(settings, 2)
    broken = WorkerRepository(pool, dlq_queue_name="no_such_dlq")
    first, second = _read(broken, "t")
    with pytest.raises(DatabaseError):
        broken.record([Succeeded(first, 200, 3.0), Failed(second, "HTTP 422", 422, 3.0)])
    assert _callbacks(settings.postgres_dsn) == []
    assert queue_length(settings.postgres_dsn, "t:callbacks") == 0
    assert [row["status"] for row in statuses(settings.postgres_dsn, task_id)] == [
        "pending",
        "pending",
    ]
    # Delivered again later (here: at once), the outcomes bring their callbacks.
    WorkerRepository(pool, dlq_queue_name=DLQ).record(
        [Succeeded(first, 200, 3.0), Failed(second, "HTTP 422", 422, 3.0)]
    )
    kinds = [row[3] for row in _callbacks(settings.postgres_dsn)]
    assert kinds == ["success", "failure"]
    assert queue_length(settings.postgres_dsn, "t:callbacks") == 2


def test_a_late_success_of_a_cancelled_message_owes_no_callback(
    settings: Settings, pool: ConnectionPool
) -> None:
    """A worker whose visibility timeout ran out mid-call; meanwhile the task was cancelled."""
    task_id = _submit(settings)
    repository = WorkerRepository(pool, dlq_queue_name=DLQ)
    (route,) = [route for route in repository.routes() if route.task_type == "t"]
    (delivery,) = repository.read(route, 1, 1).deliveries  # visible again after 1 s
    with api_client(settings) as client:

        def cancelled() -> bool:
            reply = client.delete(f"/tasks/{task_id}")
            return bool(reply.json()["cancelled_count"])

        wait_until(cancelled, timeout=10, interval=0.2)
    repository.record([Succeeded(delivery, 200, 3.0)])
    assert statuses(settings.postgres_dsn, task_id)[0]["status"] == "cancelled"
    assert _callbacks(settings.postgres_dsn) == []
