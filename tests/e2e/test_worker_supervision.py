"""Real faults inside a running worker: none stops it silently, each stays as small as its cause.

Each test breaks something in its own database (a queue table renamed, a SQL
function replaced by one that raises, a trigger refusing status writes, the
listener's connection killed while its schema check cannot run) and watches the
worker process through its probes, its metrics and what it delivers.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from tests.support import faults
from tests.support.api import api_client
from tests.support.processes import free_port, start_worker, stop
from tests.support.target import Target, wait_until
from tests.support.worker import statuses, submit

pytestmark = pytest.mark.e2e


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.base, self.log = process, f"http://127.0.0.1:{port}", log

    def probe(self, path: str) -> int:
        try:
            return httpx.get(f"{self.base}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def metric(self, name: str, labels: str) -> float:
        try:
            text = httpx.get(f"{self.base}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0.0
        found = re.search(rf"^{re.escape(name + labels)} ([0-9.e+-]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def restarts(self, thread: str) -> float:
        return self.metric("taskq_worker_thread_restarts_total", f'{{thread="{thread}"}}')


@contextmanager
def worker(settings: Settings, tmp_path: Path, **overrides: object) -> Iterator[WorkerProcess]:
    port = free_port()
    log = tmp_path / "worker.log"
    process = start_worker(settings, log, METRICS_PORT=port, **overrides)
    handle = WorkerProcess(process, port, log)
    try:
        wait_until(lambda: handle.probe("/health/ready") == 200, timeout=15)
        # Listening too: the tests below change what the listener finds on connecting.
        wait_until(lambda: faults.connected(settings.postgres_dsn, "taskq-listener"), timeout=15)
        yield handle
    finally:
        if process.poll() is None:
            stop(process)


def submit_one(settings: Settings, task_type: str, url: str, **fields: object) -> str:
    with api_client(settings) as client:
        return submit(
            client, {"task_type": task_type, "url": url, "payloads": [{"data": 1}], **fields}
        )


def delivered(settings: Settings, task_id: str) -> bool:
    rows = statuses(settings.postgres_dsn, task_id)
    return len(rows) == 1 and rows[0]["status"] == "success"


def test_a_type_whose_queue_is_gone_is_set_aside_while_others_flow(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    dsn = settings.postgres_dsn
    first = submit_one(settings, "broken", target.url)
    # One process, so that "logged once" counts one fetcher's lines.
    with worker(settings, tmp_path, WORKER_PROCESSES=1) as running:
        wait_until(lambda: delivered(settings, first), timeout=15)
        table = faults.queue_table("broken")
        faults.run(dsn, "fault_rename_table", old=table, new=f"{table}_away")
        # Idle queues are read only when due: say this one has work, as a retry would.
        faults.run(dsn, "fault_queue_due_now", {"queue": queue_name_for("broken")})
        wait_until(
            lambda: (
                running.metric("taskq_worker_task_type_errors_total", '{task_type="broken"}') >= 1
            ),
            timeout=10,
        )
        other = submit_one(settings, "healthy", target.url)
        wait_until(lambda: delivered(settings, other), timeout=5)
        # A fault of one type is not the process's: it stays ready, nothing restarts.
        assert running.probe("/health/ready") == 200
        assert running.restarts("fetcher") == 0

        faults.run(dsn, "fault_rename_table", old=f"{table}_away", new=table)
        again = submit_one(settings, "broken", target.url)
        wait_until(lambda: delivered(settings, again), timeout=40)
        assert running.metric("taskq_worker_task_type_set_aside", '{task_type="broken"}') == 0.0
    log = running.log.read_text()
    assert log.count("setting it aside") == 1, "logged once per outage, not per retry"
    assert "readable again" in log


def test_a_broken_take_tokens_restarts_the_fetcher_until_it_is_mended(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    dsn = settings.postgres_dsn
    limited = {"max_rps": 100}
    with api_client(settings) as client:
        assert client.post("/task-types", json={"task_type": "paced", **limited}).status_code < 300
    first = submit_one(settings, "paced", target.url)
    with worker(settings, tmp_path, THREAD_RESTART_LIMIT=1000) as running:
        wait_until(lambda: delivered(settings, first), timeout=15)
        definition = faults.run(dsn, "fault_function_definition")[0][0]
        faults.run(dsn, "fault_break_take_tokens")
        stuck = submit_one(settings, "paced", target.url)
        wait_until(lambda: running.restarts("fetcher") >= 2, timeout=15)
        wait_until(lambda: running.probe("/health/ready") == 503, timeout=10)
        assert not delivered(settings, stuck)

        faults.restore_take_tokens(dsn, definition)
        wait_until(lambda: delivered(settings, stuck), timeout=20)
        wait_until(lambda: running.probe("/health/ready") == 200, timeout=15)
        assert running.process.poll() is None
    assert "take_tokens broken by the test" in running.log.read_text()


def test_broken_status_writes_restart_the_recorder_and_keep_its_batch(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    dsn = settings.postgres_dsn
    with worker(settings, tmp_path, THREAD_RESTART_LIMIT=1000) as running:
        faults.run(dsn, "fault_break_status_writes")
        task_id = submit_one(settings, "recorded", target.url)
        wait_until(lambda: target.count() >= 1, timeout=10)
        wait_until(lambda: running.restarts("recorder") >= 2, timeout=15)
        wait_until(lambda: running.probe("/health/ready") == 503, timeout=10)

        faults.run(dsn, "fault_mend_status_writes")
        wait_until(lambda: delivered(settings, task_id), timeout=20)
        wait_until(lambda: running.probe("/health/ready") == 200, timeout=15)
    # The batch was kept across the restarts: the call was made once.
    assert target.count() == 1


def test_a_listener_that_cannot_check_the_schema_is_restarted_until_mended(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    dsn = settings.postgres_dsn
    with worker(settings, tmp_path, THREAD_RESTART_LIMIT=1000) as running:
        faults.run(dsn, "fault_break_migrations_table")
        faults.terminate_when_connected(dsn, "taskq-listener")
        wait_until(lambda: running.restarts("listener") >= 2, timeout=15)
        wait_until(lambda: running.probe("/health/ready") == 503, timeout=10)

        faults.run(dsn, "fault_mend_migrations_table")
        wait_until(lambda: running.probe("/health/ready") == 200, timeout=20)
        task_id = submit_one(settings, "woken", target.url)
        wait_until(lambda: delivered(settings, task_id), timeout=10)


@pytest.mark.parametrize("fault", ["take_tokens", "status_writes", "listener"])
def test_a_thread_that_keeps_failing_takes_the_process_down(
    fault: str, settings: Settings, target: Target, tmp_path: Path
) -> None:
    dsn = settings.postgres_dsn
    with api_client(settings) as client:
        assert client.post("/task-types", json={"task_type": "paced", "max_rps": 100}).is_success
    # One process: its own exit is the subject (test_worker_processes covers a replica
    # restarting a child that exits, and giving up after too many).
    with worker(
        settings, tmp_path, WORKER_PROCESSES=1, THREAD_RESTART_LIMIT=3, THREAD_RESTART_WINDOW="60s"
    ) as running:
        if fault == "listener":
            faults.run(dsn, "fault_break_migrations_table")
            faults.terminate_when_connected(dsn, "taskq-listener")
        else:
            faults.run(dsn, f"fault_break_{fault}")
            # Work to make the fetcher take tokens and the recorder write (the
            # API's insert passes: the trigger refuses updates only).
            submit_one(settings, "paced", target.url)
        running.process.wait(timeout=40)
        assert running.process.returncode == 1
    thread = {"take_tokens": "fetcher", "status_writes": "recorder", "listener": "listener"}[fault]
    log = running.log.read_text()
    assert f"thread {thread} failed 3 times within 60 s" in log
    assert log.count('"thread ' + thread + ' failed"') == 3, "each failure logged once"
    assert "Traceback (most recent call last)" in log


def test_a_fetcher_stuck_on_a_lock_fails_liveness_until_it_moves_again(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    with worker(settings, tmp_path, LIVENESS_TIMEOUT="2s", DB_STATEMENT_TIMEOUT="120s") as running:
        assert running.probe("/health/live") == 200
        with psycopg.connect(settings.postgres_dsn) as blocker:
            blocker.execute(faults.FAULTS["fault_lock_task_types"])
            wait_until(lambda: running.probe("/health/live") == 503, timeout=15)
            blocker.rollback()
        wait_until(lambda: running.probe("/health/live") == 200, timeout=10)
        task_id = submit_one(settings, "unstuck", target.url)
        wait_until(lambda: delivered(settings, task_id), timeout=10)


def test_liveness_and_readiness_answer_200_on_a_healthy_worker(
    settings: Settings, tmp_path: Path
) -> None:
    with worker(settings, tmp_path) as running:
        assert running.probe("/health/live") == 200
        assert running.probe("/health/ready") == 200
