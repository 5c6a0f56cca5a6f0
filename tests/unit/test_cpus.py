"""WORKER_PROCESSES=auto: the CPUs a container may use, from cgroup files laid out as on Linux."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskq_worker.cpus import available_cpus

MACHINE = len(os.sched_getaffinity(0))


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="ascii")


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("100000 100000", 1), ("150000 100000", 2), ("50000 100000", 1), ("max 100000", MACHINE)],
)
def test_cgroup_v2_quota_rounds_up_and_never_exceeds_the_machine(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    write(tmp_path, "cpu.max", cpu_max)
    assert available_cpus(tmp_path) == min(expected, MACHINE)


@pytest.mark.parametrize(
    ("controller", "quota", "expected"),
    [("cpu", "100000", 1), ("cpu,cpuacct", "200000", 2), ("cpu", "-1", MACHINE)],
)
def test_cgroup_v1_quota(tmp_path: Path, controller: str, quota: str, expected: int) -> None:
    write(tmp_path, f"{controller}/cpu.cfs_quota_us", quota)
    write(tmp_path, f"{controller}/cpu.cfs_period_us", "100000")
    assert available_cpus(tmp_path) == min(expected, MACHINE)


def test_without_cgroup_files_the_schedulable_cpus_count(tmp_path: Path) -> None:
    assert available_cpus(tmp_path) == MACHINE


def test_garbage_in_the_cgroup_files_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "cpu.max", "lots 100000")
    assert available_cpus(tmp_path) == MACHINE
