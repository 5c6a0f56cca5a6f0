"""What counts as retrying (migration 0015's view), as the queue metrics and GET /task-types see it.

Retrying: failed at least once and not finished. Messages never tried, and
finished ones whatever their attempts, are not. The rows are made by the
worker's repository, as the recorder makes them, against the real database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from taskq_core.database import SyncPool, create_pool
from taskq_core.deliveries import Delivery, Failed, RetryLater, Succeeded
from taskq_core.repository.observability import QueueStatsReader
from taskq_core.repository.worker import WorkerRepository
from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.databases import DLQ
from tests.support.worker import statuses, submit_many

URL = "http://127.0.0.1:9/x"  # never called: the outcomes are made up here
LATER = 300.0  # a retry's delay that outlasts the test


@pytest.fixture
def repository(settings: Settings) -> Iterator[WorkerRepository]:
    pool: SyncPool = create_pool(settings, name="test-retrying", max_size=2)
    pool.open(wait=True)
    yield WorkerRepository(pool, dlq_queue_name=DLQ)
    pool.close()


def read(repository: WorkerRepository, task_type: str, quantity: int) -> list[Delivery]:
    (route,) = [route for route in repository.routes() if route.task_type == task_type]
    return repository.read(route, quantity, 30).deliveries


def retry(delivery: Delivery, delay: float) -> RetryLater:
    return RetryLater(delivery, "HTTP 503", 503, 1.0, delay)


def test_the_queue_metrics_and_the_task_type_figures_count_the_same_retrying_messages(
    settings: Settings, repository: WorkerRepository
) -> None:
    with api_client(settings) as client:
        mixed = submit_many(client, "mixed", URL, 7)
        submit_many(client, "other", URL, 2)
        submit_many(client, "idle", URL, 1)

        # mixed: three wait for a retry; two failed once and then finished (one
        # succeeded, one went to the DLQ); one is in flight and one queued, never tried.
        first = read(repository, "mixed", 6)
        assert len(first) == 6
        waiting, again = first[:3], first[3:5]  # the sixth stays in flight
        repository.record([retry(d, LATER) for d in waiting] + [retry(d, 0.0) for d in again])
        second = read(repository, "mixed", 2)  # oldest first: the two retried ones
        assert sorted(d.message_id for d in second) == sorted(d.message_id for d in again)
        assert [d.attempt for d in second] == [1, 1]
        repository.record(
            [
                Succeeded(second[0], 200, 1.0),
                Failed(second[1], "HTTP 503", 503, 1.0, exhausted=True),
            ]
        )
        # other: one waits for a retry, one is queued. idle: nothing ever failed.
        (other,) = read(repository, "other", 1)
        repository.record([retry(other, LATER)])

        rows = Counter(
            (row["status"], row["attempt"]) for row in statuses(settings.postgres_dsn, mixed)
        )
        assert rows == {("pending", 1): 3, ("success", 1): 1, ("failed", 1): 1, ("pending", 0): 2}

        response = client.get("/task-types")
        assert response.status_code == 200, response.text
        figures = {entry["task_type"]: entry for entry in response.json()["task_types"]}

    reader = QueueStatsReader(settings)
    try:
        snapshot = reader.snapshot()
    finally:
        reader.close()
    assert snapshot is not None
    metrics = {stats.task_type: stats.retrying for stats in snapshot.queues}

    expected = {"idle": 0, "mixed": 3, "other": 1}
    assert metrics == expected
    assert {task_type: entry["retrying"] for task_type, entry in figures.items()} == expected
    # The hidden messages of mixed are the three retries and the one in flight.
    assert (figures["mixed"]["backlog"], figures["mixed"]["visible"]) == (5, 1)
    assert figures["mixed"]["in_flight"] == 1
