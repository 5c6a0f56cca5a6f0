"""WORKER_PROCESSES > 1: the replica's main process restarts, stops and aggregates its children."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.processes import free_port, start_worker, stop
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, statuses, submit_many

pytestmark = pytest.mark.e2e


def metric(text: str, name: str, labels: str = "") -> float | None:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


def scrape(port: int, path: str = "/metrics") -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except httpx.HTTPError:
        return None


def children(parent: int) -> list[int]:
    try:
        return sorted(child.pid for child in psutil.Process(parent).children())
    except psutil.NoSuchProcess:
        return []


def test_a_killed_child_is_restarted_and_nothing_is_lost(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    total = 600
    target.responder = lambda _request: Reply(delay=0.01)
    with api_client(settings) as client:
        task_id = submit_many(client, "children", target.url, total)
    port = free_port()
    worker = start_worker(
        settings,
        tmp_path / "worker.log",
        WORKER_PROCESSES=2,
        MAX_WORKERS=4,
        VISIBILITY_TIMEOUT="2s",
        METRICS_PORT=port,
    )
    try:
        wait_until(lambda: len(children(worker.pid)) == 2, timeout=15)
        first = children(worker.pid)
        wait_until(lambda: target.count() >= total // 4, timeout=30)
        psutil.Process(first[0]).send_signal(signal.SIGKILL)
        # A new child takes the dead one's place; the other keeps running.
        wait_until(lambda: len(set(children(worker.pid)) - set(first)) == 1, timeout=15)
        assert first[1] in children(worker.pid)
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=60)
        text = scrape(port)
        assert text is not None
        assert metric(text.text, "taskq_worker_process_restarts_total") == 1.0
    finally:
        assert stop(worker) == 0
    assert {row["status"] for row in statuses(settings.postgres_dsn, task_id)} == {"success"}


def test_sigterm_to_the_main_process_drains_every_child(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    answered: list[str] = []
    lock = threading.Lock()

    def slow(request: Received) -> Reply:
        time.sleep(1.0)
        with lock:
            answered.append(request.headers["idempotency-key"])
        return Reply()

    target.responder = slow
    with api_client(settings) as client:
        task_id = submit_many(client, "drain", target.url, 40)
    worker = start_worker(
        settings,
        tmp_path / "worker.log",
        WORKER_PROCESSES=2,
        MAX_WORKERS=3,
        MAX_QUEUE_BUFFER=5,
        SHUTDOWN_GRACE_PERIOD="10s",
    )
    # Both children have calls in flight: each runs at most 3 at once.
    wait_until(lambda: target.count() - len(answered) >= 4, timeout=20)
    pids = children(worker.pid)
    assert len(pids) == 2
    assert stop(worker, timeout=20) == 0
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )
    started = target.count()
    rows = statuses(settings.postgres_dsn, task_id)
    done = [row for row in rows if row["status"] == "success"]
    # Every call that started was answered and recorded before its process exited.
    assert len(answered) == started
    assert len(done) == started


def test_one_metrics_port_serves_the_sum_of_the_children(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    total = 300
    with api_client(settings) as client:
        task_id = submit_many(client, "summed", target.url, total)
    port = free_port()
    worker = start_worker(
        settings, tmp_path / "worker.log", WORKER_PROCESSES=2, MAX_WORKERS=3, METRICS_PORT=port
    )
    try:
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=30)

        def delivered() -> float | None:
            reply = scrape(port)
            labels = '{outcome="success",task_type="summed"}'
            return metric(reply.text, "taskq_worker_deliveries_total", labels) if reply else None

        wait_until(lambda: delivered() == float(total), timeout=10)
        reply = scrape(port)
        assert reply is not None
        # Gauges published by both children (live sums), and the parent's queue state.
        wait_until(lambda: metric(scrape(port).text, "taskq_worker_threads") == 6.0, timeout=5)  # type: ignore[union-attr]
        assert metric(reply.text, "taskq_worker_database_up") == 1.0
        wait_until(lambda: metric(scrape(port).text, "taskq_dlq_messages") == 0.0, timeout=15)  # type: ignore[union-attr]
        ready = scrape(port, "/health/ready")
        assert ready is not None
        assert ready.status_code == 200
    finally:
        assert stop(worker) == 0
