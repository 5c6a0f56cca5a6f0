"""The host breakers count the calls of every outcome the recorder writes, and only those.

When a batch cannot be written whole (one task type's queue is broken), the
recorder writes it queue by queue: the parts written reach the breakers once,
the part dropped (its messages are delivered, and called, again) does not.
Driven with outcomes made up here, against the real database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from taskq_core.circuits import BreakerPolicy, CircuitState
from taskq_core.database import SyncPool, create_pool
from taskq_core.deliveries import Delivery, RetryLater, Snoozed
from taskq_core.repository.circuits import CircuitRepository
from taskq_core.repository.worker import WorkerRepository
from taskq_core.settings import Settings
from taskq_worker.circuit_view import CircuitView
from taskq_worker.health import DatabaseHealth
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.recorder import Recorder
from taskq_worker.wakeups import Wakeups
from tests.support import faults
from tests.support.api import api_client
from tests.support.databases import DLQ
from tests.support.worker import statuses, submit_many

# Four calls open a host whose calls all failed; the cool-down outlasts the test.
POLICY = BreakerPolicy(failure_ratio=0.5, min_calls=4, window=60.0, cooldown=600.0, probes=2)
CALLS = 4
WRITTEN_HOST, DROPPED_HOST = "127.0.0.1:9", "127.0.0.1:10"  # never called: outcomes made up


@pytest.fixture
def pool(settings: Settings) -> Iterator[SyncPool]:
    opened = create_pool(settings, name="test-recorder", max_size=2)
    opened.open(wait=True)
    yield opened
    opened.close()


def read(repository: WorkerRepository, task_type: str) -> list[Delivery]:
    (route,) = [route for route in repository.routes() if route.task_type == task_type]
    return repository.read(route, CALLS, 30).deliveries


def test_the_calls_of_the_parts_written_alone_reach_the_breakers_once(
    settings: Settings, pool: SyncPool
) -> None:
    dsn = settings.postgres_dsn
    with api_client(settings) as client:
        written_task = submit_many(client, "written", f"http://{WRITTEN_HOST}/a", CALLS)
        dropped_task = submit_many(client, "dropped", f"http://{DROPPED_HOST}/b", CALLS)
    repository = WorkerRepository(pool, dlq_queue_name=DLQ)
    written, dropped = read(repository, "written"), read(repository, "dropped")
    assert (len(written), len(dropped)) == (CALLS, CALLS)
    # The dropped type's queue goes away while its calls are under way: the batch
    # cannot be written whole, the written type's part alone can.
    faults.run(dsn, "fault_rename_table", old=faults.queue_table("dropped"), new="q_away")

    circuits = CircuitRepository(pool, POLICY)
    view = CircuitView(
        circuits,
        POLICY,
        max_snoozes=settings.max_snoozes,
        max_snooze_delay=settings.max_snooze_delay,
    )
    metrics = WorkerMetrics()
    recorder = Recorder(repository, DatabaseHealth(), Wakeups(), metrics, circuits=view)
    for delivery in [*written, *dropped]:  # one batch: every call failed with a 503
        recorder.submit(RetryLater(delivery, "HTTP 503", 503, 1.0, 300.0))
    recorder.finish(time.monotonic() + 10)
    recorder.run()  # writes what was submitted, then returns

    assert [row["attempt"] for row in statuses(dsn, written_task)] == [1] * CALLS
    assert [row["attempt"] for row in statuses(dsn, dropped_task)] == [0] * CALLS
    assert metrics.task_type_errors.labels("dropped")._value.get() == 1
    # The written part's calls opened its host, counted once; the dropped part's
    # host was never told of its calls.
    with api_client(settings) as client:
        response = client.get("/hosts")
    assert response.status_code == 200, response.text
    hosts = {row["host"]: row for row in response.json()["hosts"]}
    assert list(hosts) == [WRITTEN_HOST]
    opened = hosts[WRITTEN_HOST]
    assert (opened["state"], opened["calls"], opened["failures"]) == ("open", CALLS, CALLS)
    assert opened["times_opened"] == 1
    assert {state.host: state.state for state in circuits.not_closed()} == {
        WRITTEN_HOST: CircuitState.OPEN
    }
    # This process's view learnt it from the same write: the host's next message waits.
    assert isinstance(view.hold(written[0]), Snoozed)
