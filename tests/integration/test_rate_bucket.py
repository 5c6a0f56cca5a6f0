"""The shared token bucket in PostgreSQL: reservations, waits and the global bound."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from taskq_core.queries import QUERIES
from taskq_core.repository.worker import WorkerRepository
from tests.support.databases import DLQ

# Alone (`make test` runs serial tests after the parallel ones): the grants are timed
# to the millisecond, and beside another xdist worker a call sometimes lagged 15 ms.
pytestmark = pytest.mark.serial


@pytest.fixture
def repository(db_dsn: str) -> Iterator[WorkerRepository]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(QUERIES["register_task_type"], {"task_type": "t", "queue": "tq_t"})
        conn.execute(QUERIES["configure_rate"], {"task_type": "t", "max_rps": 100.0})
    # Closed here: a pool left to the garbage collector warns from __del__ in
    # whichever later test the collection happens to run, and pytest fails that test.
    with ConnectionPool(db_dsn, min_size=1, max_size=2, open=True) as pool:
        yield WorkerRepository(pool, dlq_queue_name=DLQ)


def test_unlimited_type_has_no_bucket(repository: WorkerRepository) -> None:
    assert repository.take_tokens("unknown", 10) is None


def test_grants_are_at_most_a_burst_and_reservations_wait_their_turn(
    repository: WorkerRepository,
) -> None:
    # From before the first call: the database's clock starts inside it, and on a
    # loaded machine its reply may take longer than the 10 ms tolerance below.
    started = time.monotonic()
    first = repository.take_tokens("t", 10)
    assert first is not None
    # 100 rps: a burst is 5% of a second's tokens, and the bucket starts full.
    assert (first.granted, first.wait_seconds) == (5, 0.0)
    waits = []
    for _ in range(10):
        grant = repository.take_tokens("t", 10)
        assert grant is not None
        assert grant.granted == 5
        waits.append(grant.wait_seconds)
    elapsed = time.monotonic() - started
    # Each reservation is usable 50 ms after the previous one (less the time
    # that passed between the calls, which refilled the bucket meanwhile).
    assert waits == sorted(waits)
    assert 0.05 - elapsed - 0.01 <= waits[0] <= 0.05 + 0.01
    assert 0.5 - elapsed - 0.01 <= waits[-1] <= 0.5 + 0.01
    # Half a second is reserved: the next caller gets at most what refilled
    # meanwhile (a few ms' worth) and never a slot beyond the horizon.
    after = repository.take_tokens("t", 10)
    assert after is not None
    assert after.granted <= 1 + 100 * (time.monotonic() - started)
    assert after.wait_seconds <= 0.52


def test_granted_tokens_never_exceed_the_rate(repository: WorkerRepository) -> None:
    """Tokens usable by time t never exceed the burst plus rate x elapsed time."""
    start = time.monotonic()
    usable_at: list[float] = []
    while time.monotonic() - start < 1.0:
        grant = repository.take_tokens("t", 3)
        assert grant is not None
        now = time.monotonic() - start
        usable_at += [now + grant.wait_seconds] * grant.granted
        if grant.granted == 0:
            time.sleep(grant.wait_seconds)
    for moment in sorted(usable_at):
        used_by_then = sum(1 for other in usable_at if other <= moment)
        assert used_by_then <= 5 + 100 * moment + 1
    assert len(usable_at) >= 90
