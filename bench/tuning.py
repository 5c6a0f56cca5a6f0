"""Scenarios about the worker's own overhead: the concurrency tuner's delay sweep, idle cost.

The sweep drains the same backlog against targets answering after a fixed
delay, with fixed threads (the default) and with the tuner on, so the tuner's
gain or loss is a ratio measured in the same run. The idle scenario counts
what an idle replica costs the database and itself with 1,000 idle task types.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

from bench.db import database_transactions
from bench.scenarios import Context, burn_down, measure_latency, value_at_most
from taskq_core.queue_names import queue_name_for

SWEEP_DELAYS_MS = (0, 2, 5, 10, 15, 25, 50)
SWEEP_BACKLOGS = (3000, 12_000)
QUICK_SWEEP = ((0, 3000), (5, 3000), (25, 3000))
IDLE_TYPES = 1000
IDLE_WINDOW_SECONDS = 20.0
QUICK_IDLE_TYPES = 300


def sweep_points(quick: bool) -> list[tuple[int, int]]:
    if quick:
        return list(QUICK_SWEEP)
    return [(delay, backlog) for backlog in SWEEP_BACKLOGS for delay in SWEEP_DELAYS_MS]


def scenario_delay_sweep(ctx: Context) -> None:
    """Calls/s with fixed threads and with the tuner on, one worker process, MAX_WORKERS 10."""
    cluster = ctx.need_cluster("delay sweep")
    if cluster is None:
        return
    modes = {"fixed threads (default)": "false", "tuner on": "true"}
    for delay, backlog in sweep_points(ctx.quick):
        ctx.counting.reset(delay_ms=delay)
        rates: dict[str, float | None] = {}
        for label, adaptive in modes.items():
            ctx.progress.step(f"delay sweep: {delay} ms target, {backlog:,} backlog, {label}")
            task_type = f"bench-sweep-{delay}-{backlog}-{adaptive}"
            rates[label] = burn_down(
                ctx,
                cluster,
                task_type,
                backlog,
                replicas=1,
                url=ctx.counting.url,
                extra_env={"ADAPTIVE_CONCURRENCY": adaptive},
            )
        fixed, tuned = rates["fixed threads (default)"], rates["tuner on"]
        ctx.record(
            "delay sweep",
            f"{delay} ms, {backlog:,} backlog: fixed threads (default)",
            fixed,
            "calls/s",
        )
        ctx.record(
            "delay sweep",
            f"{delay} ms, {backlog:,} backlog: tuner on",
            tuned,
            "calls/s",
            baseline=fixed,
            baseline_name="fixed threads",
            note="tuner on / fixed threads; the tuner is opt-in (ADAPTIVE_CONCURRENCY=true)",
        )
    ctx.counting.reset()


def scenario_idle(ctx: Context) -> None:
    """Transactions/s and CPU of one idle worker with many idle task types; latency still met."""
    cluster = ctx.need_cluster("idle cost")
    if cluster is None:
        return
    types = QUICK_IDLE_TYPES if ctx.quick else IDLE_TYPES
    ctx.progress.step(f"idle cost: creating {types:,} task types")
    names = [f"bench-idle-{number}" for number in range(types)]
    for name in names:
        cluster.configure_type(name, None)
    try:
        cluster.start_workers(1, processes="auto")  # the replica as deployed
        worker = psutil.Process(cluster.workers[0].pid)
        # Start-up (the children, the first due poll, the routes, the pools), then
        # until its statistics have reached the counter.
        wait(5.0 + STATS_IDLE_FLUSH_SECONDS)
        before_tx, before_at = database_transactions(ctx.dsn), time.monotonic()
        before_cpu = tree_cpu(worker)
        ctx.progress.step(f"idle cost: measuring for {IDLE_WINDOW_SECONDS:.0f} s")
        wait(IDLE_WINDOW_SECONDS)
        cpu = tree_cpu(worker) - before_cpu
        # Idle backends' statistics lag alike at both reads: the difference is the
        # transactions of the time between them.
        transactions = database_transactions(ctx.dsn) - before_tx
        elapsed = time.monotonic() - before_at
        ctx.record(
            "idle cost",
            f"{types:,} idle task types: transactions/s",
            transactions / elapsed,
            "tx/s",
            target="<= 5 tx/s",
            check=value_at_most(5.0),
            note="one idle replica (WORKER_PROCESSES=auto) and the idle API; counts every "
            "client of the bench database, read from outside it",
        )
        ctx.record(
            "idle cost",
            f"{types:,} idle task types: replica CPU (all its processes)",
            100 * cpu / IDLE_WINDOW_SECONDS,
            "% of a core",
            target="<= 1% of a core",
            check=value_at_most(1.0),
        )
        ctx.progress.step(f"idle cost: latency of new work on one of {types:,} idle types")
        measure_latency(ctx, cluster, names[types // 2], f"{types:,} idle types, 20/s", idle=True)
    finally:
        cluster.stop_workers()
        ctx.db.purge(queue_name_for(names[types // 2]))


def wait(seconds: float) -> None:
    threading.Event().wait(seconds)


# PostgreSQL 15 flushes a busy backend's statistics at most once a second; what
# is left when it goes idle waits for the idle-stats timeout (10 s). Creating the
# types and starting the replica just before the window would otherwise be
# counted as idle transactions (tests/integration/test_worker_idle_cost.py too).
STATS_IDLE_FLUSH_SECONDS = 10.5


def tree_cpu(process: psutil.Process) -> float:
    """CPU-seconds of a process and its children."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


SCENARIOS: dict[str, Callable[[Context], None]] = {
    "delay-sweep": scenario_delay_sweep,
    "idle": scenario_idle,
}
