"""WORKER_CPU_AFFINITY=auto: which CPU a worker process is kept on, from the CPUs' loads."""

from __future__ import annotations

import os
import threading

import pytest

from taskq_worker.affinity import (
    UNPINNED,
    CpuBalancer,
    CpuTimes,
    least_busy,
    next_cpu,
    starting_cpus,
)


def first(cpus: list[int]) -> int:
    return cpus[0]


@pytest.mark.parametrize(
    ("processes", "allowed", "expected"),
    [
        (2, [0, 1], [0, 1]),  # a 2-CPU machine or cpuset, WORKER_PROCESSES=auto
        (4, [2, 3], [2, 3, 2, 3]),  # more processes than CPUs: spread evenly
        (1, [5], [5]),
        (1, [0, 1], None),  # fewer processes than CPUs: each finds the least busy
        (2, list(range(64)), None),  # a quota on a shared node
        (2, [], None),  # a platform that cannot pin
    ],
)
def test_processes_get_starting_cpus_only_when_the_cpus_are_the_replicas_own(
    processes: int, allowed: list[int], expected: list[int] | None
) -> None:
    assert starting_cpus(processes, allowed) == expected


def test_a_process_stays_while_other_programs_leave_its_cpu_mostly_to_it() -> None:
    # This process uses 0.9 of CPU 1; PostgreSQL and the target add 0.2.
    assert next_cpu(1, {0: 0.05, 1: 1.0}, 0.9, [0, 1], first) == 1


def test_a_crowded_process_moves_to_an_idle_cpu() -> None:
    # Another replica shares CPU 0 (others use 0.5 of it) while CPU 1 is idle.
    assert next_cpu(0, {0: 1.0, 1: 0.1}, 0.5, [0, 1], first) == 1


def test_a_small_difference_is_not_worth_a_move() -> None:
    assert next_cpu(0, {0: 0.9, 1: 0.3}, 0.5, [0, 1], first) == 0


def test_when_every_cpu_is_crowded_the_process_stays_pinned() -> None:
    # Another replica on CPU 0 and a busy program on CPU 1: moving gains nothing,
    # and unpinned the process would spend ~1.5x the CPU per call.
    assert next_cpu(0, {0: 1.0, 1: 1.0}, 0.5, [0, 1], first) == 0


def test_the_first_choice_is_the_least_busy_cpu() -> None:
    assert next_cpu(UNPINNED, {0: 0.6, 1: 0.2, 2: 0.9}, 0.3, [0, 1, 2], first) == 1


def test_processes_starting_together_choose_among_the_nearly_idle_cpus() -> None:
    choices: list[list[int]] = []

    def remember(cpus: list[int]) -> int:
        choices.append(cpus)
        return cpus[-1]

    assert least_busy({0: 0.02, 1: 0.08, 2: 0.7, 3: 0.5}, [0, 1, 2, 3], remember) == 1
    assert choices == [[0, 1]]
    # A CPU missing from /proc/stat (hot-unplugged) counts as busy, never as idle.
    assert least_busy({0: 0.5}, [0, 1], first) == 0


def test_loads_are_read_from_the_kernel_for_every_allowed_cpu() -> None:
    earlier = CpuTimes.read()
    sum(range(2_000_000))  # some CPU for this process to account
    later = CpuTimes.read()
    shares, own = later.shares_since(earlier)
    assert set(os.sched_getaffinity(0)) <= set(shares)
    assert all(0.0 <= share <= 1.0 for share in shares.values())
    assert own > 0.0


def test_a_refused_pin_leaves_the_process_where_it_was() -> None:
    before = os.sched_getaffinity(0)
    balancer = CpuBalancer(threading.Event(), [0, 4095])
    assert balancer.begin_on(4095) is False  # no such CPU: the kernel refuses
    assert balancer.cpu == UNPINNED
    assert os.sched_getaffinity(0) == before


def test_the_balancer_ends_when_the_worker_stops() -> None:
    stop = threading.Event()
    balancer = CpuBalancer(stop, sorted(os.sched_getaffinity(0)))
    thread = threading.Thread(target=balancer.run)
    stop.set()
    thread.start()
    thread.join(timeout=2)
    assert not thread.is_alive()
