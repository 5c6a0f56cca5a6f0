"""An idle worker costs the same however many task types exist, and still reacts on time.

Idle queues are not polled one by one: the worker asks which queues are due
(taskq.queue_due, migration 0007) in one query, and everything that makes a
message visible marks its queue due: submissions, retries (this replica's or
another's), released and reprocessed messages.
"""

from __future__ import annotations

import resource
import threading
import time

import psycopg

from taskq_core.settings import Settings
from tests.support.api import SQL, api_client
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit

IDLE_TYPES = 200
WINDOW_SECONDS = 10.0


def transactions(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(SQL["test_transactions"]).fetchone()
    assert row is not None
    return int(row[0])


# PostgreSQL 15 flushes a backend's statistics when it goes idle, but at most once a
# second; what is left then waits for the idle-stats timeout (10 s). So the burst of
# work before the window can land inside it unless the window opens after that.
STATS_IDLE_FLUSH_SECONDS = 10.5


def settled_transactions(dsn: str) -> int:
    """The count once the statistics have caught up with what happened before now."""
    previous = transactions(dsn)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        threading.Event().wait(1.2)
        current = transactions(dsn)
        if current - previous <= 6:  # our own reads plus at most a few of the worker's
            return current
        previous = current
    return previous


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_idle_worker_with_many_task_types_makes_few_transactions(
    settings: Settings, target: Target
) -> None:
    with api_client(settings) as client:
        for number in range(IDLE_TYPES):
            response = client.post("/task-types", json={"task_type": f"idle-{number}"})
            assert response.status_code in (200, 201), response.text
        # One type that did have work: it must go idle too once its queue is empty.
        task_id = submit(client, {"task_type": "idle-0", "url": target.url, "payloads": [{}]})
    dsn = settings.postgres_dsn
    with running_worker(settings):
        wait_until(lambda: all_final(dsn, task_id, 1))
        # Not a wait for work: the statistics of the work just done must be flushed
        # before the window opens, or they are counted as idle transactions.
        threading.Event().wait(STATS_IDLE_FLUSH_SECONDS)
        before = settled_transactions(dsn)
        cpu_before = process_cpu_seconds()
        # A measuring window, not a wait for work: the worker is meant to stay idle.
        threading.Event().wait(WINDOW_SECONDS)
        cpu = process_cpu_seconds() - cpu_before
        after = settled_transactions(dsn)
    per_second = (after - before) / WINDOW_SECONDS
    # Polling every queue made one transaction per type per second (~200/s here).
    assert per_second <= 5, f"{per_second:.1f} transactions/s with {IDLE_TYPES} idle types"
    # The whole test process (worker threads included); the target is 1% of a core.
    assert cpu / WINDOW_SECONDS <= 0.02, f"{cpu / WINDOW_SECONDS:.1%} of a core while idle"


def test_new_work_is_read_at_once_on_an_idle_worker(settings: Settings, target: Target) -> None:
    with api_client(settings) as client, running_worker(settings):
        for number in range(20):
            client.post("/task-types", json={"task_type": f"quiet-{number}"})
        threading.Event().wait(1.5)  # let every queue settle as idle
        started = time.monotonic()
        task_id = submit(client, {"task_type": "quiet-7", "url": target.url, "payloads": [{}]})
        wait_until(lambda: target.count() == 1)
        assert target.requests_snapshot()[0].at - started < 0.5
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))


def test_a_retry_scheduled_by_a_replica_that_stopped_is_read_by_another_when_due(
    settings: Settings, target: Target
) -> None:
    """Replica A schedules a retry 2 s out and stops; replica B must read it when due.

    B never saw the retry happen: only the database knows (mark_due). Without it
    B would find the message only after its visibility timeout (30 s here).
    """

    def flaky(_request: Received) -> Reply:
        # A 503 with Retry-After snoozes the message (no attempt spent): the
        # snooze is scheduled through mark_due as a retry is.
        if target.count() == 1:
            return Reply(status=503, headers={"Retry-After": "2"})
        return Reply()

    target.responder = flaky
    with api_client(settings) as client:
        with running_worker(settings, retry_max_delay=5.0, visibility_timeout=30.0):
            task_id = submit(client, {"url": target.url, "payloads": [{}]})
            wait_until(lambda: target.count() == 1)
            first = target.requests_snapshot()[0].at
            wait_until(lambda: statuses(settings.postgres_dsn, task_id)[0]["snoozes"] == 1)
        with running_worker(settings, retry_max_delay=5.0, visibility_timeout=30.0):
            wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1), timeout=15)
    second = target.requests_snapshot()[1].at
    assert 1.9 <= second - first < 3.6


def test_released_messages_are_read_at_once_by_another_replica(
    settings: Settings, target: Target
) -> None:
    """Messages a stopping replica read but never started go to a running replica at once."""
    release = threading.Event()

    def slow(_request: Received) -> Reply:
        release.wait(10)
        return Reply()

    target.responder = slow
    with api_client(settings) as client, running_worker(settings, max_workers=1) as other:
        with running_worker(settings, max_workers=1, shutdown_grace_period=5.0) as stopping:
            # Both replicas hold one message in a call; the rest waits in buffers.
            task_id = submit(
                client, {"url": target.url, "payloads": [{"data": n} for n in range(20)]}
            )
            wait_until(lambda: target.count() >= 2)
            stopping.stop_event.set()
            stopped_at = time.monotonic()
            release.set()
            target.responder = lambda _request: Reply()
        # The stopping replica returned its unstarted messages; `other` reads them now,
        # not after the visibility timeout.
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 20), timeout=8)
        assert other.health.up
    assert time.monotonic() - stopped_at < 8
