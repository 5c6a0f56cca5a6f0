"""WORKER_CPU_AFFINITY: each worker process's threads kept on one CPU, placed where it pays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.processes import free_port, start_worker, stop
from tests.support.target import Target, wait_until
from tests.support.worker import all_final, submit_many

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
        reason="pinning needs a Linux machine with two CPUs or more",
    ),
]
ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def thread_cpus(pid: int) -> set[frozenset[int]]:
    """The distinct CPU sets the threads of `pid` may run on."""
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found.add(frozenset(os.sched_getaffinity(int(task))))
        except ProcessLookupError:
            continue
    return found


def children(parent: int, count: int) -> list[int]:
    wait_until(lambda: len(psutil.Process(parent).children()) == count, timeout=15)
    return sorted(child.pid for child in psutil.Process(parent).children())


@pytest.mark.serial  # children start on distinct CPUs; a crowded machine may move them on
def test_a_replica_with_its_own_cpus_gives_each_process_one_of_them(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    processes = len(ALLOWED)
    with api_client(settings) as client:
        task_id = submit_many(client, "pinned", target.url, 50)
    worker = start_worker(
        settings, tmp_path / "worker.log", WORKER_PROCESSES=processes, MAX_WORKERS=3
    )
    try:
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 50), timeout=30)
        pinned = [thread_cpus(child) for child in children(worker.pid, processes)]
        # Every thread of a child on the same single CPU, and no two children on one CPU.
        assert all(len(cpus) == 1 and len(next(iter(cpus))) == 1 for cpus in pinned)
        assert sorted(next(iter(next(iter(cpus)))) for cpus in pinned) == ALLOWED
        assert thread_cpus(worker.pid) == {frozenset(ALLOWED)}  # the main process is not pinned
    finally:
        assert stop(worker) == 0


def test_affinity_off_leaves_every_process_on_all_cpus(settings: Settings, tmp_path: Path) -> None:
    worker = start_worker(
        settings,
        tmp_path / "worker.log",
        WORKER_PROCESSES=len(ALLOWED),
        MAX_WORKERS=2,
        WORKER_CPU_AFFINITY="off",
    )
    try:
        for child in children(worker.pid, len(ALLOWED)):
            wait_until(lambda pid=child: len(os.listdir(f"/proc/{pid}/task")) > 3, timeout=15)
            assert thread_cpus(child) == {frozenset(ALLOWED)}
    finally:
        assert stop(worker) == 0


@pytest.mark.serial  # it keeps one CPU busy, and reads the CPUs' loads
def test_a_single_process_pins_itself_and_leaves_a_cpu_another_program_takes(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    port = free_port()
    worker = start_worker(
        settings, tmp_path / "worker.log", WORKER_PROCESSES=1, MAX_WORKERS=3, METRICS_PORT=port
    )
    hog: subprocess.Popen[bytes] | None = None
    try:

        def single_cpu() -> int | None:
            cpus = thread_cpus(worker.pid)
            only = next(iter(cpus)) if len(cpus) == 1 else frozenset()
            return next(iter(only)) if len(only) == 1 else None

        wait_until(lambda: single_cpu() is not None, timeout=15)
        crowded = single_cpu()
        assert crowded is not None
        # A real neighbour: a busy loop kept on the worker's CPU.
        spin = f"import os; os.sched_setaffinity(0, {{{crowded}}})\nwhile True: pass"
        hog = subprocess.Popen([sys.executable, "-c", spin])
        # The serial pass leaves the other CPUs mostly idle: the worker moves to one.
        wait_until(lambda: thread_cpus(worker.pid) != {frozenset({crowded})}, timeout=30)
        with api_client(settings) as client:
            task_id = submit_many(client, "moved", target.url, 30)
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 30), timeout=30)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
        assert stop(worker) == 0
