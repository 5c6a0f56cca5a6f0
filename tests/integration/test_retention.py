"""Retention: old finished statuses and dead letters go, in batches, one replica at a time."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.circuits import BreakerPolicy
from taskq_core.database import create_pool
from taskq_core.ids import new_task_id
from taskq_core.repository.circuits import CircuitRepository, HostTally
from taskq_core.repository.retention import RetentionRepository
from taskq_core.settings import Settings
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.retention import RetentionJob, RetentionPolicy, RoundResult
from tests.support.api import SQL, api_client, dlq_length
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit

DAY = 86400.0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


@pytest.fixture
def jobs() -> Iterator[list[RetentionJob]]:
    """Every job a test makes; their connections (and the lock) are closed afterwards."""
    made: list[RetentionJob] = []
    yield made
    for made_job in made:
        made_job.close()


def job(
    made: list[RetentionJob],
    settings: Settings,
    metrics: WorkerMetrics | None = None,
    *,
    batch_rows: int = 1000,
    **policy: float | None,
) -> RetentionJob:
    new = RetentionJob(
        RetentionRepository(settings),
        RetentionPolicy(
            status_retention=policy.get("status_retention", 7 * DAY),
            dlq_retention=policy.get("dlq_retention"),
        ),
        metrics or WorkerMetrics(),
        threading.Event(),
        batch_rows=batch_rows,
    )
    made.append(new)
    return new


def round_of(made: list[RetentionJob], settings: Settings, **options: Any) -> RoundResult:
    """One round by a job of its own, which then lets the lock go."""
    one = job(made, settings, **options)
    try:
        return one.run_round()
    finally:
        one.close()


def backdate(dsn: str, task_id: str, seconds: float) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(SQL["test_backdate_statuses"], {"task_id": task_id, "seconds": seconds})


def task_rows(dsn: str, task_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(SQL["test_task_rows"], {"task_id": task_id}).fetchone()
    return int(row[0]) if row else 0


def deliver(
    client: TestClient[Litestar], settings: Settings, target: Target, count: int, path: str = "/ok"
) -> str:
    task_id = submit(
        client,
        {
            "task_type": "r",
            "url": f"{target.url}{path}",
            "payloads": [{"data": n} for n in range(count)],
        },
    )
    wait_until(lambda: all_final(settings.postgres_dsn, task_id, count))
    return task_id


def test_old_finished_rows_go_in_batches_and_the_rest_stays(
    client: TestClient[Litestar], settings: Settings, target: Target, jobs: list[RetentionJob]
) -> None:
    target.responder = lambda request: Reply(status=422 if request.path == "/dead" else 200)
    with running_worker(settings):
        old = deliver(client, settings, target, 25)
        recent = deliver(client, settings, target, 3)
        dead = deliver(client, settings, target, 2, "/dead")
    waiting = submit(client, {"task_type": "r", "url": target.url, "payloads": [{"data": 1}]})
    cancelled = submit(client, {"task_type": "r", "url": target.url, "payloads": [{"data": 1}]})
    assert client.delete(f"/tasks/{cancelled}").json()["cancelled_count"] == 1
    dsn = settings.postgres_dsn
    for task_id in (old, dead, waiting, cancelled):
        backdate(dsn, task_id, 8 * DAY)

    metrics = WorkerMetrics()
    result = round_of(jobs, settings, metrics=metrics, batch_rows=10)

    assert result.led
    assert result.complete
    assert result.statuses == 26  # 25 old successes and the old cancellation, in 3 batches
    assert result.tasks == 2
    assert statuses(dsn, old) == []
    assert task_rows(dsn, old) == 0
    assert statuses(dsn, cancelled) == []
    assert len(statuses(dsn, recent)) == 3  # too young
    assert [row["status"] for row in statuses(dsn, dead)] == ["failed"] * 2  # still in the DLQ
    assert [row["status"] for row in statuses(dsn, waiting)] == ["pending"]  # not finished
    assert metrics.retention_deleted.labels("status")._value.get() == 26
    assert metrics.retention_deleted.labels("task")._value.get() == 2
    listed = {task["task_id"] for task in client.get("/tasks").json()["tasks"]}
    assert listed == {recent, dead, waiting}
    assert round_of(jobs, settings).statuses == 0


def test_a_round_stops_at_its_time_budget_and_the_next_one_goes_on(
    client: TestClient[Litestar], settings: Settings, target: Target, jobs: list[RetentionJob]
) -> None:
    with running_worker(settings):
        old = deliver(client, settings, target, 30)
    backdate(settings.postgres_dsn, old, 8 * DAY)
    stopped = job(jobs, settings, batch_rows=10)
    stopped._budget = 0.0  # one batch, then out of time
    first = stopped.run_round()
    stopped.close()
    assert (first.statuses, first.complete) == (10, False)
    assert round_of(jobs, settings, batch_rows=10).statuses == 20


def test_closed_breakers_of_hosts_not_called_for_the_retention_go(
    settings: Settings, jobs: list[RetentionJob]
) -> None:
    pool = create_pool(settings, name="test-hosts", max_size=1)
    pool.open(wait=True)
    try:
        circuits = CircuitRepository(pool, BreakerPolicy(min_calls=2, cooldown=60.0))
        circuits.record({"idle:80": HostTally(1, 0), "down:80": HostTally(2, 2)})
    finally:
        pool.close()
    kept = round_of(jobs, settings, status_retention=3600.0)
    assert kept.hosts == 0
    wait_until(lambda: round_of(jobs, settings, status_retention=0.05).hosts == 1)
    with api_client(settings) as client:
        hosts = client.get("/hosts").json()["hosts"]
    assert [host["host"] for host in hosts] == ["down:80"]  # an open one stays


def test_one_replica_at_a_time(settings: Settings, jobs: list[RetentionJob]) -> None:
    first, second = job(jobs, settings), job(jobs, settings)
    assert first.run_round().led
    assert not second.run_round().led
    first.close()  # the lock goes with its connection, once the server has ended the session
    wait_until(lambda: second.run_round().led)


def test_dead_letters_are_kept_unless_dlq_retention_is_set(
    client: TestClient[Litestar], settings: Settings, target: Target, jobs: list[RetentionJob]
) -> None:
    target.responder = lambda _request: Reply(status=422)
    with running_worker(settings):
        dead = deliver(client, settings, target, 3)
    dsn = settings.postgres_dsn
    backdate(dsn, dead, 30 * DAY)
    with psycopg.connect(dsn) as conn:
        conn.execute(SQL["test_backdate_dead_letters"], {"seconds": 30 * DAY})

    assert round_of(jobs, settings).dead_letters == 0  # default: dead letters are kept
    assert dlq_length(dsn, settings.dlq_queue_name) == 3

    result = round_of(jobs, settings, dlq_retention=7 * DAY)
    assert result.dead_letters == 3
    assert dlq_length(dsn, settings.dlq_queue_name) == 0
    rows = statuses(dsn, dead)
    assert {(row["status"], row["dlq_message_id"]) for row in rows} == {("failed", None)}
    # Their statuses now age from the moment their dead letters went.
    assert round_of(jobs, settings, dlq_retention=7 * DAY).statuses == 0
    backdate(dsn, dead, 8 * DAY)
    assert round_of(jobs, settings, dlq_retention=7 * DAY).statuses == 3


def test_a_purged_task_is_a_404_that_says_retention(
    settings: Settings, target: Target, jobs: list[RetentionJob]
) -> None:
    short = dataclasses.replace(settings, status_retention=1.0)
    with api_client(short) as client, running_worker(short):
        task_id = deliver(client, short, target, 2)
        retention = job(jobs, short, status_retention=1.0)
        wait_until(
            lambda: (
                retention.run_round().statuses == 2 or not statuses(short.postgres_dsn, task_id)
            ),
            timeout=10,
        )
        response = client.get(f"/tasks/{task_id}")
        never = client.get(f"/tasks/{new_task_id()}")
    assert response.status_code == 404
    assert "retention" in response.json()["detail"]
    assert "STATUS_RETENTION" in response.json()["detail"]
    assert never.status_code == 404
    assert "retention" not in never.json()["detail"]
    assert UUID(task_id).version == 7


def test_the_worker_runs_retention_under_its_own_thread(settings: Settings) -> None:
    with running_worker(settings):
        wait_until(lambda: any(thread.name == "retention" for thread in threading.enumerate()))
