"""Worker processes stopped, killed and cut off from the database: nothing accepted is lost."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from taskq_dev.localpg import LocalPostgres
from taskq_dev.queries import DEV_QUERIES
from tests.support.api import api_client
from tests.support.cluster import restart_cluster
from tests.support.processes import start_worker, stop
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit, submit_many

pytestmark = pytest.mark.e2e


def queue_depth(dsn: str, task_type: str) -> tuple[int, int]:
    """(messages in the queue, of which visible now)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            DEV_QUERIES["test_queue_depth"], {"queue": queue_name_for(task_type)}
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_sigterm_drains_in_flight_calls_and_returns_the_rest_at_once(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    target.responder = lambda _request: Reply(delay=1.0)
    with api_client(settings) as client:
        task_id = submit(
            client,
            {"task_type": "drain", "url": target.url, "payloads": [{"data": n} for n in range(30)]},
        )
    worker = start_worker(
        settings,
        tmp_path / "worker.log",
        MAX_WORKERS=4,
        MAX_QUEUE_BUFFER=10,
        SHUTDOWN_GRACE_PERIOD="10s",
    )
    wait_until(lambda: target.count() >= 4, timeout=10)
    in_flight = target.count()
    stopped_at = time.monotonic()
    assert stop(worker, timeout=15) == 0
    assert time.monotonic() - stopped_at < 5
    done = [row for row in statuses(settings.postgres_dsn, task_id) if row["status"] == "success"]
    # Every call that had started finished during the drain...
    assert len(done) >= in_flight
    # ...and every message read but not started is visible again at once.
    total, visible = queue_depth(settings.postgres_dsn, "drain")
    assert total == 30 - len(done)
    assert visible == total

    target.responder = lambda _request: Reply()
    with running_worker(settings):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 30), timeout=20)
    assert {row["status"] for row in statuses(settings.postgres_dsn, task_id)} == {"success"}


class StatusWatcher:
    """Polls a task's status rows in a thread and keeps every (status, attempt) seen per payload.

    What it proves: no payload is ever seen moving backwards (success is final,
    the attempt count never goes down), whatever happens to the workers.
    """

    def __init__(self, dsn: str, task_id: str, *, interval: float = 0.05) -> None:
        self._dsn, self._task_id, self._interval = dsn, task_id, interval
        self._stop = threading.Event()
        self.seen: dict[int, list[tuple[str, int]]] = {}
        self.polls = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            for row in statuses(self._dsn, self._task_id):
                history = self.seen.setdefault(int(row["payload_id"]), [])
                state = (str(row["status"]), int(row["attempt"]))
                if not history or history[-1] != state:
                    history.append(state)
            self.polls += 1
            self._stop.wait(self._interval)

    def backward_moves(self) -> list[tuple[int, list[tuple[str, int]]]]:
        """Payloads seen leaving success, or with their attempt count going down."""
        moved = []
        for payload_id, history in self.seen.items():
            seen = [status for status, _ in history]
            attempts = [attempt for _, attempt in history]
            since_success = seen[seen.index("success") :] if "success" in seen else []
            if set(since_success) - {"success"} or attempts != sorted(attempts):
                moved.append((payload_id, history))
        return moved


def test_sigkill_during_2000_deliveries_loses_nothing_and_never_goes_back(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    total = 2000
    target.responder = lambda _request: Reply(delay=0.005)
    with api_client(settings) as client:
        task_id = submit_many(client, "killed", target.url, total)
    with StatusWatcher(settings.postgres_dsn, task_id) as watcher:
        worker = start_worker(
            settings,
            tmp_path / "worker.log",
            MAX_WORKERS=8,
            MAX_QUEUE_BUFFER=50,
            VISIBILITY_TIMEOUT="2s",
        )
        wait_until(lambda: target.count() >= total // 3, timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        queued, visible = queue_depth(settings.postgres_dsn, "killed")
        unacknowledged = queued - visible  # read by the dead worker, never finished in the database

        with running_worker(settings, visibility_timeout=2.0):
            wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=60)
    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"success"}
    keys = Counter(request.headers["idempotency-key"] for request in target.requests_snapshot())
    assert len(keys) == total
    duplicates = sum(count - 1 for count in keys.values())
    assert duplicates <= unacknowledged
    assert watcher.polls >= 5, "the watcher should have seen the run"
    assert watcher.backward_moves() == []


def test_database_restart_mid_run_loses_nothing(
    own_cluster: LocalPostgres, own_cluster_settings: Settings, target: Target, tmp_path: Path
) -> None:
    settings = own_cluster_settings
    total = 300
    target.responder = lambda _request: Reply(delay=0.02)
    with api_client(settings) as client:
        task_id = submit_many(client, "restart", target.url, total)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log, MAX_WORKERS=4)
    try:
        wait_until(lambda: target.count() >= 40, timeout=20)
        restart_cluster(own_cluster)
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=60)
        assert worker.poll() is None, "the worker died with the database"
    finally:
        assert stop(worker) == 0
    assert {row["status"] for row in statuses(settings.postgres_dsn, task_id)} == {"success"}
    keys = {request.headers["idempotency-key"] for request in target.requests_snapshot()}
    assert len(keys) == total
    lines = log.read_text().splitlines()
    downs = sum("database unavailable" in line for line in lines)
    ups = sum("database reachable again" in line for line in lines)
    # Logged per state change, not per retry: every "unavailable" is answered by
    # a "reachable again" (a restart may flap down and up a few times), in each
    # of the worker's processes (WORKER_PROCESSES=2, tests.support.processes).
    assert downs >= 1
    assert downs == ups, "each outage line should be a change of state, matched by a recovery"
    assert downs <= 6 * 2
