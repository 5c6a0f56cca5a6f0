"""Worker processes stopped, killed and cut off from the database: nothing accepted is lost."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from taskq_core.queries import QUERIES
from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from tests.integration.test_worker_delivery import all_final, submit
from tests.support.api import api_client
from tests.support.processes import start_worker, stop
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import running_worker, statuses

pytestmark = pytest.mark.e2e


def queue_depth(dsn: str, task_type: str) -> tuple[int, int]:
    """(messages in the queue, of which visible now)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            QUERIES["test_queue_depth"], {"queue": queue_name_for(task_type)}
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


def test_sigkill_mid_batch_loses_nothing(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    total = 600
    target.responder = lambda _request: Reply(delay=0.005)
    with api_client(settings) as client:
        task_id = submit(
            client,
            {
                "task_type": "killed",
                "url": target.url,
                "payloads": [{"data": n} for n in range(total)],
            },
        )
    worker = start_worker(
        settings,
        tmp_path / "worker.log",
        MAX_WORKERS=8,
        MAX_QUEUE_BUFFER=50,
        VISIBILITY_TIMEOUT="2s",
    )
    wait_until(lambda: target.count() >= 150, timeout=20)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    queued, visible = queue_depth(settings.postgres_dsn, "killed")
    unacknowledged = queued - visible  # read by the dead worker, never finished in the database

    with running_worker(settings, visibility_timeout=2.0):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=40)
    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"success"}
    keys = Counter(request.headers["idempotency-key"] for request in target.requests_snapshot())
    assert len(keys) == total
    duplicates = sum(count - 1 for count in keys.values())
    assert duplicates <= unacknowledged


def _restartable_cluster() -> str | None:
    """Why the local PostgreSQL cannot be restarted here, or None when it can."""
    dsn = os.environ.get("TASKQ_TEST_DSN", "")
    if "127.0.0.1:5432" not in dsn and "localhost:5432" not in dsn:
        return "restarting needs the test server to be the local cluster on port 5432"
    if shutil.which("pg_ctlcluster") is None:
        return "pg_ctlcluster is not installed"
    if os.geteuid() != 0:
        return "restarting the cluster needs root"
    return None


@pytest.mark.skipif(_restartable_cluster() is not None, reason=str(_restartable_cluster()))
def test_database_restart_mid_run_loses_nothing(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    total = 300
    target.responder = lambda _request: Reply(delay=0.02)
    with api_client(settings) as client:
        task_id = submit(
            client,
            {
                "task_type": "restart",
                "url": target.url,
                "payloads": [{"data": n} for n in range(total)],
            },
        )
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log, MAX_WORKERS=4)
    try:
        wait_until(lambda: target.count() >= 40, timeout=20)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart", "-m", "fast"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=60)
        assert worker.poll() is None, "the worker died with the database"
    finally:
        assert stop(worker) == 0
    assert {row["status"] for row in statuses(settings.postgres_dsn, task_id)} == {"success"}
    keys = {request.headers["idempotency-key"] for request in target.requests_snapshot()}
    assert len(keys) == total
    outage_lines = [line for line in log.read_text().splitlines() if "database unavailable" in line]
    assert 1 <= len(outage_lines) <= 3, "the outage should be logged once per state change"
