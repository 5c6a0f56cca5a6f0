"""max_concurrency holds across worker processes, and a crashed worker's slots come back."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.processes import start_worker, stop
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, submit_many


class Gauge:
    """Counts the requests the target is answering right now, and the most it ever saw."""

    def __init__(self, hold: float) -> None:
        self._hold = hold
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __call__(self, _request: Received) -> Reply:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self._hold)
        with self._lock:
            self.now -= 1
        return Reply()


@pytest.mark.slow
def test_max_concurrency_holds_for_the_sum_of_three_worker_processes(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    gauge = Gauge(hold=0.2)
    target.responder = gauge
    total = 45
    with api_client(settings) as client:
        response = client.post("/task-types", json={"task_type": "narrow", "max_concurrency": 3})
        assert response.status_code == 200, response.text
        assert response.json()["max_concurrency"] == 3
        task_id = submit_many(client, "narrow", target.url, total)
    workers = [start_worker(settings, tmp_path / f"w{n}.log", MAX_WORKERS=8) for n in range(3)]
    try:
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=60)
    finally:
        assert [stop(worker) for worker in workers] == [0, 0, 0]
    assert target.count() == total
    # 24 threads could call at once; the type allows 3, and uses them.
    assert gauge.peak == 3


@pytest.mark.slow
def test_a_crashed_workers_slots_are_taken_again_within_seconds(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    gauge = Gauge(hold=20.0)  # calls outlive the crash: only the leases can free the slots
    target.responder = gauge
    with api_client(settings) as client:
        client.post("/task-types", json={"task_type": "held", "max_concurrency": 2})
        submit_many(client, "held", target.url, 6)
    doomed = start_worker(settings, tmp_path / "doomed.log", MAX_WORKERS=4, TIMEOUT="30s")
    survivor = None
    try:
        wait_until(lambda: target.count() == 2, timeout=20)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = time.monotonic()
        survivor = start_worker(settings, tmp_path / "survivor.log", MAX_WORKERS=4, TIMEOUT="30s")
        wait_until(lambda: target.count() >= 3, timeout=20)
        reclaimed_after = time.monotonic() - killed_at
        # Both slots come back together, and no third call ever ran beside them.
        wait_until(lambda: target.count() == 4, timeout=5)
        time.sleep(0.5)  # a fifth call would have to arrive now to break the limit
        assert target.count() == 4
    finally:
        if survivor is not None:
            survivor.send_signal(signal.SIGKILL)
            survivor.wait(timeout=10)
    # Leases last 5 s without renewal; the new worker needs about a second to start.
    assert reclaimed_after < 9.0
    assert gauge.peak == 4  # the two orphaned calls still running, and two new ones
