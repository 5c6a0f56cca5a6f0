"""Scenario `shaping` (issue 16): a target allowing 100 calls/s, a type whose max_rps is 500.

The target (bench.limited_target) answers 429 with Retry-After above its
allowance. The same backlog is drained three times, by one worker replica of
two processes: with the 429 snooze alone, with pacing (the target also sends
IETF rate-limit headers) and with the adaptive rate. Reported per variant:
goodput (successful calls/s from the first call to the last success), the
share of calls answered 429, the calls wasted on them and the attempts spent,
and how many messages ended in the DLQ. `python -m bench --only shaping`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import requests

from bench.cluster import Cluster, wait_until_done
from bench.procs import LOCALHOST, Managed, free_port, wait_for_port
from bench.scenarios import Context, ratio_at_least, value_at_most
from taskq_core.queue_names import queue_name_for
from taskq_dev.queries import DEV_QUERIES

ALLOWANCE = 100.0  # calls/s the target accepts
MAX_RPS = 500.0  # the type's configured limit: five times too high
GOODPUT_GOAL = 0.95  # x ALLOWANCE, with pacing or adaptive
REFUSED_GOAL = 0.02  # share of calls answered 429, with pacing or adaptive


@dataclass(frozen=True, slots=True)
class Variant:
    label: str
    headers: str  # what the target sends: "ietf" rate-limit headers, or "none"
    adaptive: bool
    goal: bool  # held to the goals (the snooze-only run is the comparison)


VARIANTS = (
    Variant("snooze only", "none", adaptive=False, goal=False),
    Variant("pacing (IETF RateLimit headers)", "ietf", adaptive=False, goal=True),
    Variant("adaptive (AIMD)", "none", adaptive=True, goal=True),
)


class LimitedTarget:
    """bench.limited_target in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://{LOCALHOST}:{self.port}"
        self.url = f"{self.base}/call"
        argv = [sys.executable, "-m", "bench.limited_target", "--port", str(self.port)]
        self.proc = Managed("limited-target", [*argv, "--rate", f"{ALLOWANCE:g}"])
        wait_for_port(self.port, timeout=10, process=self.proc.process)
        self._session = requests.Session()
        self._session.trust_env = False

    def reset(self, headers: str) -> None:
        reply = self._session.post(f"{self.base}/_reset", json={"headers": headers}, timeout=10)
        reply.raise_for_status()

    def summary(self) -> dict[str, float | None]:
        reply = self._session.get(f"{self.base}/_summary", timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def stop(self) -> None:
        self._session.close()
        self.proc.stop()


def scenario_shaping(ctx: Context) -> None:
    cluster = ctx.need_cluster("shaping")
    if cluster is None:
        return
    backlog = 1500 if ctx.quick else 5000
    target = LimitedTarget()
    try:
        for variant in VARIANTS:
            run_variant(ctx, cluster, target, variant, backlog)
    finally:
        target.stop()


def run_variant(
    ctx: Context, cluster: Cluster, target: LimitedTarget, variant: Variant, backlog: int
) -> None:
    task_type = "bench-shaping-" + variant.label.split(" ")[0]
    body: dict[str, object] = {"task_type": task_type, "max_rps": MAX_RPS}
    if variant.adaptive:
        body["adaptive"] = True
    reply = cluster.client.post(f"{cluster.api_url}/task-types", json=body, timeout=30)
    reply.raise_for_status()
    ctx.progress.step(f"shaping: {backlog:,} calls, {variant.label}")
    cluster.submit_many(task_type, target.url, backlog)
    target.reset(variant.headers)
    try:
        cluster.start_workers(1, processes="2", max_workers=16)
        wait_until_done(lambda: ctx.db.done(task_type), backlog, timeout=backlog / 20 + 60)
    finally:
        cluster.stop_workers()
        ctx.db.purge(queue_name_for(task_type))
    seen = target.summary()
    ok, refused = int(seen["ok"] or 0), int(seen["refused"] or 0)
    first, last = seen["first"], seen["last_ok"]
    goodput = None
    if first is not None and last is not None and last > first:
        goodput = ok / (last - first)
    calls = ok + refused
    refused_share = refused / calls if calls else None
    counts = ctx.db.status_counts(task_type)
    row = ctx.db.conn.execute(
        DEV_QUERIES["bench_attempts_and_snoozes"], {"task_type": task_type}
    ).fetchone()
    attempts, snoozes = (int(row[0]), int(row[1])) if row else (0, 0)
    dead = counts.get("failed", 0)
    extra: dict[str, float | int | str] = {
        "ok": ok,
        "refused": refused,
        "attempts_spent": attempts,
        "snoozes": snoozes,
        "dead_lettered": dead,
        "succeeded": counts.get("success", 0),
    }
    note = (
        f"{refused} of {calls} calls got 429 (wasted), {attempts} attempts spent, "
        f"{snoozes} snoozes, {dead} dead-lettered"
    )
    ctx.record(
        "shaping",
        f"{variant.label}: goodput",
        goodput,
        "calls/s",
        baseline=ALLOWANCE,
        baseline_name="target allowance",
        target=f">= {GOODPUT_GOAL:g}x allowance" if variant.goal else "",
        check=ratio_at_least(GOODPUT_GOAL) if variant.goal else None,
        note=note,
        extra=extra,
    )
    ctx.record(
        "shaping",
        f"{variant.label}: share of calls answered 429",
        None if refused_share is None else refused_share * 100,
        "%",
        target=f"<= {REFUSED_GOAL * 100:g}%" if variant.goal else "",
        check=value_at_most(REFUSED_GOAL * 100) if variant.goal else None,
    )
    ctx.record(
        "shaping",
        f"{variant.label}: dead-lettered",
        dead,
        "messages",
        target="0",
        check=value_at_most(0),
    )


SCENARIOS = {"shaping": scenario_shaping}
