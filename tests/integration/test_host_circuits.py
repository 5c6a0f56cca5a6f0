"""The host circuit breaker's state machine in PostgreSQL (migration 0014), and GET /hosts.

Driven through the worker's repository as a recorder and executors would,
with a real database; the cool-down is short so the states move in a test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from taskq_core.circuits import BreakerPolicy, CircuitState
from taskq_core.database import SyncPool, create_pool
from taskq_core.repository.circuits import CircuitRepository, HostState, HostTally
from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.target import wait_until

POLICY = BreakerPolicy(failure_ratio=0.5, min_calls=4, window=60.0, cooldown=1.5, probes=2)
HOST = "127.0.0.1:8001"


@pytest.fixture
def pool(settings: Settings) -> Iterator[SyncPool]:
    opened = create_pool(settings, name="test-circuits", max_size=2)
    opened.open(wait=True)
    yield opened
    opened.close()


@pytest.fixture
def circuits(pool: SyncPool) -> CircuitRepository:
    return CircuitRepository(pool, POLICY)


@pytest.fixture
def lasting(pool: SyncPool) -> CircuitRepository:
    """Breakers that stay open for the whole test, however slow the machine."""
    return CircuitRepository(pool, dataclasses.replace(POLICY, cooldown=600.0))


def states(views: list[HostState]) -> dict[str, CircuitState]:
    return {view.host: view.state for view in views}


def open_host(circuits: CircuitRepository) -> None:
    assert circuits.record({HOST: HostTally(calls=4, failures=2)}) != []


def test_a_host_opens_at_the_failure_ratio_once_it_has_enough_calls(
    circuits: CircuitRepository,
) -> None:
    # Three failures of three calls: below BREAKER_MIN_CALLS, still closed.
    assert circuits.record({HOST: HostTally(calls=3, failures=3)}) == []
    # A healthy host in the same batch is not touched by its neighbour.
    after = circuits.record({HOST: HostTally(1, 0), "127.0.0.1:8002": HostTally(50, 0)})
    [view] = after
    assert (view.host, view.state) == (HOST, CircuitState.OPEN)
    assert 0.5 < view.open_for <= POLICY.cooldown
    assert states(circuits.not_closed()) == {HOST: CircuitState.OPEN}


def test_below_the_ratio_a_host_stays_closed(circuits: CircuitRepository) -> None:
    assert circuits.record({HOST: HostTally(calls=10, failures=4)}) == []


def test_outcomes_of_calls_already_under_way_when_it_opened_change_nothing(
    circuits: CircuitRepository,
) -> None:
    open_host(circuits)
    [view] = circuits.record({HOST: HostTally(calls=5, failures=0)})
    assert view.state is CircuitState.OPEN
    assert circuits.claim_probe(HOST).granted is False  # no probe before the cool-down ends


def test_after_the_cool_down_only_the_probes_go_and_their_successes_close_it(
    circuits: CircuitRepository,
) -> None:
    open_host(circuits)
    wait_until(lambda: circuits.not_closed()[0].open_for == 0.0, timeout=5)
    claims = [circuits.claim_probe(HOST) for _ in range(4)]
    assert [claim.granted for claim in claims] == [True, True, False, False]
    assert claims[-1].state.state is CircuitState.HALF_OPEN
    [view] = circuits.record({HOST: HostTally(calls=1, failures=0)})
    assert view.state is CircuitState.HALF_OPEN  # one of two probes back
    assert circuits.record({HOST: HostTally(calls=1, failures=0)}) == []
    claim = circuits.claim_probe(HOST)
    assert claim.granted
    assert claim.state.state is CircuitState.CLOSED


def test_a_failed_probe_opens_it_again(circuits: CircuitRepository) -> None:
    open_host(circuits)
    wait_until(lambda: circuits.claim_probe(HOST).granted, timeout=5)
    [view] = circuits.record({HOST: HostTally(calls=1, failures=1)})
    assert view.state is CircuitState.OPEN
    assert view.open_for > 0.5


def test_a_probe_lost_with_its_worker_is_handed_out_again_after_the_cool_down(
    circuits: CircuitRepository,
) -> None:
    open_host(circuits)
    wait_until(lambda: circuits.claim_probe(HOST).granted, timeout=5)
    assert circuits.claim_probe(HOST).granted
    assert not circuits.claim_probe(HOST).granted  # both probes out, never answered
    wait_until(lambda: circuits.claim_probe(HOST).granted, timeout=5)


def test_get_hosts_shows_each_breaker(settings: Settings, lasting: CircuitRepository) -> None:
    lasting.record({"127.0.0.1:8002": HostTally(calls=3, failures=1)})
    open_host(lasting)
    with api_client(settings) as client:
        response = client.get("/hosts")
    assert response.status_code == 200, response.text
    hosts = response.json()["hosts"]
    assert [host["host"] for host in hosts] == [HOST, "127.0.0.1:8002"]  # not closed first
    opened, closed = hosts
    assert opened["state"] == "open"
    assert (opened["calls"], opened["failures"], opened["times_opened"]) == (4, 2, 1)
    assert opened["opens_until"] is not None
    assert closed["state"] == "closed"
    assert (closed["calls"], closed["failures"], closed["opens_until"]) == (3, 1, None)
    assert set(opened) == {
        "host",
        "state",
        "calls",
        "failures",
        "times_opened",
        "opens_until",
        "last_failure_at",
        "updated_at",
    }


def test_the_console_shows_the_hosts_under_the_task_types(
    settings: Settings, lasting: CircuitRepository
) -> None:
    open_host(lasting)
    with api_client(settings) as client:
        page = client.get("/ui/types")
    assert page.status_code == 200, page.text
    assert f'<tr data-host="{HOST}">' in page.text
    assert ">open</span>" in page.text
