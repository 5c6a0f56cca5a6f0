"""Pacing and the adaptive rate against targets that limit on purpose, with 2 worker processes.

The rate a type is sent at lives in the shared bucket, so both processes of
the replica slow down together when either of them hears from the target.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.processes import start_worker, stop
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, statuses, submit_many


class FixedWindows:
    """Allows `quota` calls per `window` seconds; states what is left in X-RateLimit-* headers.

    The reset is a Unix time with a fraction (as several APIs send it); a call
    over the quota gets 429 with Retry-After.
    """

    def __init__(self, quota: int, window: float) -> None:
        self.quota, self.window = quota, window
        self._lock = threading.Lock()
        self._started = time.time()
        self.allowed: dict[int, int] = {}  # window number -> calls allowed in it
        self.refused = 0

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            now = time.time()
            number = int((now - self._started) // self.window)
            reset_at = self._started + (number + 1) * self.window
            used = self.allowed.get(number, 0)
            if used >= self.quota:
                self.refused += 1
                wait = str(math.ceil(reset_at - now))
                return Reply(
                    status=429, headers={**self._headers(0, reset_at), "Retry-After": wait}
                )
            self.allowed[number] = used + 1
            return Reply(headers=self._headers(self.quota - used - 1, reset_at))

    @staticmethod
    def _headers(remaining: int, reset_at: float) -> dict[str, str]:
        return {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": f"{reset_at:.3f}"}


class TokenBucket:
    """Allows `rate` calls/s (a bucket of one second's worth); 429 + Retry-After: 1 above it.

    Sends no rate-limit headers: only the adaptive rate can learn its limit.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._tokens, self._at = rate, time.monotonic()
        self.ok = self.refused = 0

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                self.refused += 1
                return Reply(status=429, headers={"Retry-After": "1"})
            self._tokens -= 1
            self.ok += 1
            return Reply()


@contextmanager
def two_processes(settings: Settings, tmp_path: Path) -> Iterator[None]:
    """One worker replica of 2 processes (WORKER_PROCESSES=2), running until the block ends."""
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log, MAX_WORKERS=4, WORKER_PROCESSES=2)
    try:
        yield
    finally:
        assert stop(worker) == 0, log.read_text()[-3000:]


def allowed_rps(client: TestClient[Litestar], task_type: str) -> float:
    reply = client.get(f"/task-types/{task_type}")
    assert reply.status_code == 200, reply.text
    return float(reply.json()["allowed_rps"])


@pytest.mark.slow
def test_rate_limit_headers_keep_two_processes_within_the_budget_without_a_429(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    quota, window, total = 10, 2.0, 40
    limits = FixedWindows(quota, window)
    target.responder = limits
    seen: list[float] = []
    with api_client(settings) as client:
        configured = client.post("/task-types", json={"task_type": "paced", "max_rps": 20})
        assert configured.status_code == 200, configured.text
        task_id = submit_many(client, "paced", target.url, total)
        with two_processes(settings, tmp_path):

            def finished() -> bool:
                seen.append(allowed_rps(client, "paced"))
                return all_final(settings.postgres_dsn, task_id, total)

            wait_until(finished, timeout=60, interval=0.1)
        # Pacing lapses at the target's reset: max_rps again.
        wait_until(lambda: allowed_rps(client, "paced") == 20, timeout=10)

    assert limits.refused == 0, f"{limits.refused} calls got 429; per window {limits.allowed}"
    assert max(limits.allowed.values()) <= quota
    # The budget, not max_rps (20/s: 2 s for 40 calls), set the pace.
    assert len(limits.allowed) >= total // quota
    assert min(seen) < 20
    assert max(seen) <= 20
    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"success"}
    assert {(row["attempt"], row["snoozes"]) for row in rows} == {(0, 0)}


@pytest.mark.slow
def test_the_adaptive_rate_drops_after_429s_and_climbs_back(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    total, max_rps = 150, 40.0
    bucket = TokenBucket(10.0)
    target.responder = bucket
    seen: list[float] = []
    with api_client(settings) as client:
        configured = client.post(
            "/task-types",
            json={"task_type": "aimd", "max_rps": max_rps, "adaptive": True, "min_rps": 2},
        )
        assert configured.status_code == 200, configured.text
        task_id = submit_many(client, "aimd", target.url, total)
        with two_processes(settings, tmp_path):

            def finished() -> bool:
                seen.append(allowed_rps(client, "aimd"))
                return all_final(settings.postgres_dsn, task_id, total)

            wait_until(finished, timeout=90, interval=0.1)
        metric_rate = allowed_rps(client, "aimd")

    assert bucket.refused > 0  # 40/s against 10/s: the target refused some
    lowest = min(seen)
    assert 2 <= lowest <= 0.9 * max_rps, seen
    after_lowest = seen[seen.index(lowest) :]
    assert max(after_lowest) > lowest, f"never climbed back: {seen}"
    assert 2 <= metric_rate <= max_rps
    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"success"}  # nothing dead-lettered
    assert {row["attempt"] for row in rows} == {0}  # 429s spend no attempt
