"""Keeps all the threads of a worker process on one CPU (WORKER_CPU_AFFINITY=auto).

Why: the threads of one process take turns holding the GIL, and release it
around every socket call. Free to run on any core, a waiting thread is woken on
another core and takes the GIL before the caller's short syscall returns, so
the GIL and the interpreter's hot state cross cores many times per HTTP call.
Measured on 2 cores, draining 10,000 calls to nginx (docs/benchmarks.md): one
process free to move 1,009-1,324 calls/s at 0.67-0.90 ms of worker CPU each;
the same process kept on one CPU 1,529-1,810 at 0.52-0.61 ms. Where processes
land matters as much: two on distinct CPUs made 3,402 calls/s, two on the same
CPU 1,186-1,603.

So each process runs a CpuBalancer: it goes to the least busy CPU and moves
when other programs keep that CPU busy while another is notably less busy,
since the kernel cannot move a pinned thread. A parent whose children are at
least as many as its CPUs (its own cpuset, or a small VM) starts child i on
the i-th CPU (`starting_cpus`), so that children starting together begin
spread out.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from taskq_worker.cpus import allowed_cpus

if TYPE_CHECKING:
    from taskq_core.settings import Settings
    from taskq_worker.supervisor import Supervisor

STARTING_CPU_VARIABLE = "TASKQ_WORKER_CPU"  # set by the parent: where a child begins
PROC_STAT = Path("/proc/stat")
FIRST_SAMPLE_SECONDS = 0.2  # how long the CPUs' load is read before choosing one
BUSY_TICK_SECONDS = 0.5  # how often a busy process looks at its CPU's load
IDLE_TICK_SECONDS = 5.0  # an idle process gains nothing from moving: look less often
BUSY_SHARE = 0.05  # below this share of a core the process counts as idle
# Move when other programs use more than OTHERS_LIMIT of our CPU and another CPU
# is busier than that by at least MOVE_GAIN less: smaller differences are noise
# (PostgreSQL backends and the target come and go between cores).
OTHERS_LIMIT = 0.25
MOVE_GAIN = 0.15
# After a move, stay at least this long (a random time in the range): two
# processes that see the same free CPU then do not keep swapping together.
SETTLE_RANGE_SECONDS = (1.0, 3.0)
NEAR_LEAST_BUSY = 0.1  # CPUs this close to the least busy one are chosen among at random


def starting_cpus(processes: int, allowed: list[int]) -> list[int] | None:
    """Where each of `processes` begins when they cover every allowed CPU, else None
    (few processes on many CPUs: each looks for the least busy one itself)."""
    if not allowed or len(allowed) > processes:
        return None
    return [allowed[index % len(allowed)] for index in range(processes)]


def pin_process(cpus: set[int]) -> None:
    """Put every thread of this process on `cpus`; threads started later inherit them."""
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except ProcessLookupError:  # that thread ended meanwhile
            continue


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Busy and total clock ticks per CPU (from /proc/stat), and this process's CPU seconds."""

    busy: dict[int, int]
    total: dict[int, int]
    own_seconds: float
    at: float

    @classmethod
    def read(cls) -> CpuTimes:
        busy: dict[int, int] = {}
        total: dict[int, int] = {}
        for line in PROC_STAT.read_text(encoding="ascii").splitlines():
            name, _, rest = line.partition(" ")
            if not name.startswith("cpu") or name == "cpu":
                continue
            # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy
            ticks = [int(field) for field in rest.split()]
            total[int(name[3:])] = sum(ticks[:8])
            busy[int(name[3:])] = sum(ticks[:8]) - ticks[3] - ticks[4]
        own = os.times()
        return cls(busy, total, own.user + own.system, time.monotonic())

    def shares_since(self, earlier: CpuTimes) -> tuple[dict[int, float], float]:
        """Each CPU's busy share over the interval, and this process's share of one core."""
        shares = {
            cpu: (self.busy[cpu] - earlier.busy[cpu]) / ticks
            for cpu in self.busy
            if cpu in earlier.busy and (ticks := self.total[cpu] - earlier.total[cpu]) > 0
        }
        wall = max(self.at - earlier.at, 1e-6)
        return shares, max(self.own_seconds - earlier.own_seconds, 0.0) / wall


UNPINNED = -1  # before the first choice: any allowed CPU, where the kernel puts it


def least_busy(
    shares: dict[int, float], allowed: list[int], pick: Callable[[list[int]], int]
) -> int:
    """One of the allowed CPUs nearly as idle as the idlest (at random, so that
    processes starting together spread out)."""
    loads = {cpu: shares.get(cpu, 1.0) for cpu in allowed}
    lowest = min(loads.values())
    return pick([cpu for cpu, load in loads.items() if load <= lowest + NEAR_LEAST_BUSY])


def next_cpu(
    current: int,
    shares: dict[int, float],
    own: float,
    allowed: list[int],
    pick: Callable[[list[int]], int],
) -> int:
    """The CPU to be on after an interval with these loads (`own`: this process's share).

    Crowded everywhere, the process stays where it is: unpinned it would burn
    ~1.5x the CPU per call (the GIL crossing cores) just when CPU is scarce,
    and the kernel still gives its cgroup its weight on the CPU it is on.
    """
    if current == UNPINNED:
        return least_busy(shares, allowed, pick)
    others_here = shares.get(current, 0.0) - own
    if others_here <= OTHERS_LIMIT:
        return current
    elsewhere = {cpu: shares[cpu] for cpu in allowed if cpu != current and cpu in shares}
    idlest = min(elsewhere, key=elsewhere.__getitem__, default=None)
    if idlest is not None and elsewhere[idlest] + MOVE_GAIN < others_here:
        return idlest
    return current


class CpuBalancer:
    """A supervised thread: keeps this process on a CPU that other programs leave to it."""

    def __init__(self, stop: threading.Event, allowed: list[int]) -> None:
        self._stop = stop
        self._allowed = allowed
        self._random = random.Random()
        self._settled_at = 0.0  # no move before then: just placed (set by each move)
        self.cpu = UNPINNED

    def begin_on(self, cpu: int) -> bool:
        """Go to `cpu` now, in the caller's thread; False if pinning is refused."""
        return self._move(cpu)

    def run(self) -> None:
        try:
            self._balance()
        except (OSError, ValueError) as error:  # /proc unreadable, or unlike Linux's
            logger.warning("CPU balancing stopped ({}): the worker stays where it is", error)
        self._stop.wait()  # a supervised thread that ends before the stop counts as failed

    def _balance(self) -> None:
        """Look at the CPUs' loads every tick and move when crowded; return when stopped."""
        earlier = CpuTimes.read()
        if self._stop.wait(FIRST_SAMPLE_SECONDS):
            return
        while True:
            now = CpuTimes.read()
            shares, own = now.shares_since(earlier)
            earlier = now
            if now.at >= self._settled_at:
                target = next_cpu(self.cpu, shares, own, self._allowed, self._random.choice)
                if target != self.cpu and not self._move(target):
                    return
            tick = BUSY_TICK_SECONDS if own >= BUSY_SHARE else IDLE_TICK_SECONDS
            if self._stop.wait(tick * self._random.uniform(0.75, 1.25)):
                return

    def _move(self, cpu: int) -> bool:
        """Pin to `cpu`; False (with a warning) if refused."""
        try:
            pin_process({cpu})
        except OSError as error:
            # A sandbox that forbids it (seccomp) or a cpuset that shrank: the
            # worker runs correctly where it is, only slower if that is crowded.
            logger.warning("could not move the worker to CPU {} ({}): it stays", cpu, error)
            return False
        logger.debug("worker process {} now on CPU {}", os.getpid(), cpu)
        self.cpu = cpu
        self._settled_at = time.monotonic() + self._random.uniform(*SETTLE_RANGE_SECONDS)
        return True


def place_this_process(settings: Settings, supervisor: Supervisor) -> None:
    """Start this process's CpuBalancer (before its other threads: they inherit the first pin).

    Called by the process's entry point, never by the Supervisor: pinning is
    the whole process's business, and a Supervisor run inside another program
    (the tests do) must not pin that program's threads.
    """
    allowed = allowed_cpus()
    if settings.worker_cpu_affinity != "auto" or len(allowed) < 2:
        return
    starting = os.environ.get(STARTING_CPU_VARIABLE, "")
    first = int(starting) if starting.isdigit() and int(starting) in allowed else None
    balancer = CpuBalancer(supervisor.stop_event, allowed)
    if first is not None and not balancer.begin_on(first):
        return
    supervisor.supervision.start("cpu-balancer", balancer.run)
