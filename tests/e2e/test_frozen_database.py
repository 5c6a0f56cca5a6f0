"""A database that accepts connections but never answers (its processes under SIGSTOP).

Every request answers 503 within a few seconds instead of hanging, and the
services recover by themselves once the database runs again. The cluster is
the test's own (tests/support/throwaway_pg.py), never the shared server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from taskq_core.settings import Settings
from taskq_dev.localpg import LocalPostgres
from tests.support.api_process import running_api
from tests.support.processes import free_port, start_worker, stop
from tests.support.target import Reply, Target, wait_until
from tests.support.throwaway_pg import frozen
from tests.support.worker import all_final, statuses

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

A_FEW_SECONDS = 8.0
"""The bound on any answer while frozen: statement timeout (5 s) + margin (1 s) + slack for load."""

Call = Callable[[httpx.Client], httpx.Response]


def api_calls(task_id: str) -> dict[str, Call]:
    """One request of each kind that needs the database."""
    body = {"task_type": "frozen", "url": "http://127.0.0.1:9/x", "payloads": [{"data": 1}]}
    return {
        "POST /tasks": lambda client: client.post("/tasks", json=body),
        "GET /tasks/{id}": lambda client: client.get(f"/tasks/{task_id}"),
        "GET /task-types/{t}": lambda client: client.get("/task-types/frozen"),
        "POST /dlq/reprocess": lambda client: client.post(
            "/dlq/reprocess", json={"task_type": "frozen"}
        ),
        "GET /health/ready": lambda client: client.get("/health/ready"),
    }


def answer_all(base_url: str, calls: dict[str, Call]) -> dict[str, tuple[int, float, str]]:
    """Every call at once, each on its own client: {name: (status, seconds, error code)}."""

    def timed(call: Call) -> tuple[int, float, str]:
        started = time.monotonic()
        with httpx.Client(base_url=base_url, timeout=30) as client:
            response = call(client)
        error = response.json().get("error", "") if response.status_code >= 400 else ""
        return response.status_code, time.monotonic() - started, str(error)

    with ThreadPoolExecutor(len(calls)) as executor:
        futures = {name: executor.submit(timed, call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def test_frozen_database_answers_503_within_seconds_then_recovers(
    own_cluster: LocalPostgres, own_cluster_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "api.log"
    with running_api(own_cluster_settings, log) as (base_url, _):
        created = httpx.post(
            f"{base_url}/tasks",
            json={"task_type": "frozen", "url": "http://127.0.0.1:9/x", "payloads": [{"data": 0}]},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        calls = api_calls(str(created.json()["task_id"]))
        assert {name: status for name, (status, _, _) in answer_all(base_url, calls).items()} == {
            "POST /tasks": 201,
            "GET /tasks/{id}": 200,
            "GET /task-types/{t}": 200,
            "POST /dlq/reprocess": 200,
            "GET /health/ready": 200,
        }

        with frozen(own_cluster):
            # Twice: first on the pool's open connections, then on new ones.
            for _ in range(2):
                answers = answer_all(base_url, calls)
                for name, (status, seconds, error) in answers.items():
                    assert status == 503, (name, answers)
                    assert error == "database_unavailable", (name, answers)
                    assert seconds < A_FEW_SECONDS, (name, answers)

        # Recovery by itself, no restart of the API.
        def all_answer() -> bool:
            statuses = {status for status, _, _ in answer_all(base_url, calls).values()}
            return statuses <= {200, 201}

        wait_until(all_answer, timeout=30, interval=0.5)


def test_worker_stops_reading_while_frozen_and_resumes_losing_nothing(
    own_cluster: LocalPostgres, own_cluster_settings: Settings, tmp_path: Path
) -> None:
    total = 200
    target = Target(lambda _request: Reply(delay=0.02)).start()
    log = tmp_path / "worker.log"
    try:
        with running_api(own_cluster_settings, tmp_path / "api.log") as (base_url, _):
            payloads = [{"data": n} for n in range(total)]
            created = httpx.post(
                f"{base_url}/tasks",
                json={"task_type": "thaw", "url": target.url, "payloads": payloads},
                timeout=10,
            )
            assert created.status_code == 201, created.text
        task_id = str(created.json()["task_id"])
        metrics_port = free_port()
        worker = start_worker(
            own_cluster_settings, log, MAX_WORKERS=4, MAX_QUEUE_BUFFER=10, METRICS_PORT=metrics_port
        )
        try:
            wait_until(lambda: target.count() >= 20, timeout=30)
            with frozen(own_cluster):
                # The worker notices within seconds and says it is not ready...
                wait_until(
                    lambda: _ready_status(metrics_port) == 503, timeout=A_FEW_SECONDS, interval=0.2
                )
                # ...and stops calling: what was read is done, nothing new is read.
                quiet = Quiescence(target.count, quiet_for=1.5)
                wait_until(quiet.reached, timeout=15, interval=0.1)
                assert target.count() < total
            assert worker.poll() is None, "the worker died with the database"
            wait_until(lambda: all_final(own_cluster.dsn, task_id, total), timeout=60)
            wait_until(lambda: _ready_status(metrics_port) == 200, timeout=10)
        finally:
            assert stop(worker) == 0, log.read_text()
    finally:
        target.stop()
    assert {row["status"] for row in statuses(own_cluster.dsn, task_id)} == {"success"}
    keys = {request.headers["idempotency-key"] for request in target.requests_snapshot()}
    assert len(keys) == total


def _ready_status(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code
    except httpx.TransportError:
        return 0


class Quiescence:
    """Whether a counter has stayed the same for `quiet_for` seconds (polled, never slept on)."""

    def __init__(self, count: Callable[[], int], *, quiet_for: float) -> None:
        self._count = count
        self._quiet_for = quiet_for
        self._last = count()
        self._since = time.monotonic()

    def reached(self) -> bool:
        now, current = time.monotonic(), self._count()
        if current != self._last:
            self._last, self._since = current, now
        return now - self._since >= self._quiet_for
