"""The API and the worker check the database's migrations at start and after reconnecting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from taskq_core.settings import Settings
from tests.e2e.conftest import ApiProcess
from tests.e2e.test_worker_supervision import delivered, submit_one, worker
from tests.support import faults
from tests.support.processes import BIN, settings_environment, start_worker, stop
from tests.support.target import Target, wait_until

pytestmark = pytest.mark.e2e


def exit_status(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            stop(process)


def error_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if '"level":"error"' in line]


def test_a_worker_one_migration_behind_exits_naming_the_migration(
    settings: Settings, tmp_path: Path
) -> None:
    [(version, name)] = faults.run(settings.postgres_dsn, "fault_forget_last_migration")
    log = tmp_path / "worker.log"
    assert exit_status(start_worker(settings, log)) == 1
    [line] = error_lines(log)
    assert f"{version:04d}_{name}" in line
    assert "taskq-migrate" in line


def test_the_api_one_migration_behind_exits_naming_the_migration(
    settings: Settings, tmp_path: Path
) -> None:
    [(version, name)] = faults.run(settings.postgres_dsn, "fault_forget_last_migration")
    log = tmp_path / "api.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(BIN / "taskq-api")],
            env=settings_environment(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    assert exit_status(process) == 1
    [line] = error_lines(log)
    assert f"{version:04d}_{name}" in line
    assert "taskq-migrate" in line


def test_a_worker_runs_on_newer_backward_compatible_migrations(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    faults.run(
        settings.postgres_dsn,
        "fault_add_future_migration",
        {"version": 9001, "name": "added_column", "compatible": True},
    )
    with worker(settings, tmp_path) as running:
        task_id = submit_one(settings, "ahead", target.url)
        wait_until(lambda: delivered(settings, task_id), timeout=15)
        assert running.process.poll() is None
    assert error_lines(running.log) == []


def test_a_worker_refuses_newer_migrations_not_marked_compatible(
    settings: Settings, tmp_path: Path
) -> None:
    faults.run(
        settings.postgres_dsn,
        "fault_add_future_migration",
        {"version": 9001, "name": "renamed_column", "compatible": False},
    )
    log = tmp_path / "worker.log"
    assert exit_status(start_worker(settings, log)) == 1
    [line] = error_lines(log)
    assert "ahead" in line
    assert "9001_renamed_column" in line


def test_a_worker_checks_again_after_reconnecting(settings: Settings, tmp_path: Path) -> None:
    with worker(settings, tmp_path) as running:
        faults.run(
            settings.postgres_dsn,
            "fault_add_future_migration",
            {"version": 9001, "name": "renamed_column", "compatible": False},
        )
        faults.terminate_when_connected(settings.postgres_dsn, "taskq-listener")
        assert exit_status(running.process) == 1
    assert any("9001_renamed_column" in line for line in error_lines(running.log))


def test_the_api_checks_again_after_reconnecting(
    settings: Settings, api_process: ApiProcess
) -> None:
    dsn = settings.postgres_dsn
    ready = f"http://{api_process.address}/health/ready"

    def status() -> int:
        try:
            return httpx.get(ready, timeout=5).status_code
        except httpx.HTTPError:
            return 0

    assert status() == 200
    faults.run(
        dsn,
        "fault_add_future_migration",
        {"version": 9001, "name": "renamed_column", "compatible": False},
    )
    faults.terminate_when_connected(dsn, "taskq-api")
    wait_until(lambda: status() == 503, timeout=15)
    wait_until(lambda: "9001_renamed_column" in api_process.log.read_text(), timeout=10)

    faults.run(dsn, "fault_forget_migration", {"version": 9001})
    wait_until(lambda: status() == 200, timeout=30)
