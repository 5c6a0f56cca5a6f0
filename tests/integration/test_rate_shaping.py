"""Rate shaping in the shared bucket (migration 0013): pacing and the adaptive rate.

What one worker's batch tells the database (observe_rates) changes the rate the
bucket refills at for every replica; GET /task-types shows it as allowed_rps.
The worker processes that feed it are in test_worker_rate_shaping.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg_pool import ConnectionPool

from taskq_core.queries import QUERIES
from taskq_core.repository.worker import WorkerRepository
from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.databases import DLQ
from tests.support.target import wait_until


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


@pytest.fixture
def repository(settings: Settings) -> Iterator[WorkerRepository]:
    with ConnectionPool(settings.postgres_dsn, min_size=1, max_size=2, open=True) as pool:
        yield WorkerRepository(pool, dlq_queue_name=DLQ)


def observe(
    dsn: str,
    task_type: str,
    *,
    remaining: float | None = None,
    reset: float | None = None,
    successes: int = 0,
    throttled: int = 0,
) -> None:
    """What a worker's recorder sends after a batch (WorkerRepository.record)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            QUERIES["observe_rates"],
            {
                "task_types": [task_type],
                "remaining": [remaining],
                "resets": [reset],
                "successes": [successes],
                "throttled": [throttled],
            },
        )


def allowed(client: TestClient[Litestar], task_type: str) -> float | None:
    reply = client.get(f"/task-types/{task_type}")
    assert reply.status_code == 200, reply.text
    value = reply.json().get("allowed_rps")  # absent: unlimited
    return None if value is None else float(value)


def configure(client: TestClient[Litestar], **body: object) -> dict[str, object]:
    reply = client.post("/task-types", json=body)
    assert reply.status_code == 200, reply.text
    shown: dict[str, object] = reply.json()
    return shown


def test_pacing_spreads_the_budget_until_the_reset_and_never_exceeds_max_rps(
    client: TestClient[Litestar], settings: Settings
) -> None:
    dsn = settings.postgres_dsn
    configure(client, task_type="t", max_rps=100)
    assert allowed(client, "t") == 100

    observe(dsn, "t", remaining=20, reset=2.0)
    shown = client.get("/task-types/t").json()
    assert shown["allowed_rps"] == pytest.approx(10.0)
    assert shown["paced_until"] is not None
    listed = {row["task_type"]: row for row in client.get("/task-types").json()["task_types"]}
    assert listed["t"]["allowed_rps"] == pytest.approx(10.0)

    # A budget larger than max_rps allows: max_rps still holds.
    observe(dsn, "t", remaining=1_000_000_000, reset=1.0)
    assert allowed(client, "t") == 100
    assert "paced_until" not in client.get("/task-types/t").json()

    # A reset under a second counts as one; once it has passed, max_rps again.
    observe(dsn, "t", remaining=5, reset=0.3)
    assert allowed(client, "t") == pytest.approx(5.0)
    wait_until(lambda: allowed(client, "t") == 100, timeout=5)


def test_a_paced_bucket_refills_at_the_paced_rate(
    client: TestClient[Litestar], settings: Settings, repository: WorkerRepository
) -> None:
    configure(client, task_type="t", max_rps=100)
    observe(settings.postgres_dsn, "t", remaining=8, reset=4.0)  # 2 calls/s
    first = repository.take_tokens("t", 10)
    assert first is not None
    # The bucket holds at most 5% of a second at the paced rate (but one token).
    assert first.granted == 1
    second = repository.take_tokens("t", 10)
    assert second is not None
    assert (second.granted, second.wait_seconds) == (1, pytest.approx(0.5, abs=0.05))


def test_nothing_remaining_stops_the_type_until_the_reset(
    client: TestClient[Litestar], settings: Settings, repository: WorkerRepository
) -> None:
    configure(client, task_type="t", max_rps=100)
    observe(settings.postgres_dsn, "t", remaining=0, reset=3.0)
    grant = repository.take_tokens("t", 10)
    assert grant is not None
    # Nothing now: either nothing granted, or a reservation usable after the reset.
    assert grant.granted == 0 or grant.wait_seconds >= 2.8
    assert client.get("/task-types/t").json()["paced_until"] is not None


def test_budgets_of_an_unlimited_type_change_nothing(
    client: TestClient[Litestar], settings: Settings
) -> None:
    configure(client, task_type="free", max_rps=None)
    observe(settings.postgres_dsn, "free", remaining=1, reset=10.0, successes=5, throttled=5)
    assert allowed(client, "free") is None


def test_the_adaptive_rate_drops_on_throttling_and_climbs_back_within_its_bounds(
    client: TestClient[Litestar], settings: Settings
) -> None:
    dsn = settings.postgres_dsn
    shown = configure(client, task_type="aimd", max_rps=100, adaptive=True, min_rps=10)
    assert (shown["adaptive"], shown["min_rps"], shown["allowed_rps"]) == (True, 10, 100)

    observe(dsn, "aimd", throttled=3)
    assert allowed(client, "aimd") == pytest.approx(90.0)
    # The same overload answers many calls: one cut per second at most.
    observe(dsn, "aimd", throttled=3)
    assert allowed(client, "aimd") == pytest.approx(90.0)
    # Successes add 0.5 calls/s (0.5% of max_rps, at least 0.5) per second's worth.
    observe(dsn, "aimd", successes=90)
    assert allowed(client, "aimd") == pytest.approx(90.5)

    def cut_to_the_floor() -> bool:
        observe(dsn, "aimd", throttled=1)
        return allowed(client, "aimd") == pytest.approx(10.0)

    wait_until(cut_to_the_floor, timeout=20, interval=0.2)
    observe(dsn, "aimd", throttled=50)
    assert allowed(client, "aimd") == pytest.approx(10.0)  # never under min_rps

    for _ in range(5):
        observe(dsn, "aimd", successes=1_000_000)
    assert allowed(client, "aimd") == 100  # never over max_rps

    # A POST without adaptive turns it off: max_rps again.
    configure(client, task_type="aimd", max_rps=100)
    observe(dsn, "aimd", throttled=5)
    assert allowed(client, "aimd") == 100


def test_a_lowered_max_rps_caps_the_adaptive_rate(
    client: TestClient[Litestar], settings: Settings
) -> None:
    configure(client, task_type="aimd", max_rps=100, adaptive=True)
    shown = configure(client, task_type="aimd", max_rps=20, adaptive=True)
    assert (shown["allowed_rps"], shown.get("min_rps")) == (20, None)
    observe(settings.postgres_dsn, "aimd", throttled=1)
    assert allowed(client, "aimd") == pytest.approx(18.0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_type": "x", "adaptive": True}, "adaptive"),
        ({"task_type": "x", "max_rps": None, "adaptive": True}, "adaptive"),
        ({"task_type": "x", "max_rps": 10, "min_rps": 1}, "min_rps"),
        ({"task_type": "x", "max_rps": 10, "adaptive": True, "min_rps": 11}, "min_rps"),
        ({"task_type": "x", "max_rps": 10, "adaptive": True, "min_rps": 0}, "min_rps"),
        ({"task_type": "x", "max_rps": 10, "adaptive": True, "min_rps": -1}, "min_rps"),
        ({"task_type": "x", "max_rps": 10, "adaptive": True, "min_rps": "fast"}, "min_rps"),
        ({"task_type": "x", "max_rps": 10, "adaptive": True, "min_rps": 1e308}, "min_rps"),
        ({"task_type": "x", "max_rps": 10, "adaptive": "yes"}, "adaptive"),
        ({"task_type": "x", "max_rps": 10, "adaptive": None}, "adaptive"),
    ],
)
def test_bad_adaptive_settings_are_a_400_naming_the_field(
    client: TestClient[Litestar], body: dict[str, object], field: str
) -> None:
    reply = client.post("/task-types", json=body)
    assert reply.status_code == 400, reply.text
    assert field in reply.text
    assert client.get("/task-types/x").status_code == 404  # nothing half-configured
