"""The soak run: API + one worker process, steady submissions, periodic worker restarts.

Every restart is a SIGTERM (graceful drain) except every third, a SIGKILL (the
worker's in-flight messages come back after the visibility timeout). At the
end the load stops, a last worker drains the queue, and the run is judged:
every accepted payload delivered exactly once to the target, or reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from taskq_core.queries import parse_named_blocks
from taskq_core.settings import Settings
from tests.soak.memory import RssSeries, tree_rss
from tests.support.api_process import running_api
from tests.support.databases import DLQ, create_database, create_template, drop_database, server_dsn
from tests.support.processes import start_worker, stop
from tests.support.target import Reply, Target, wait_until

SQL = parse_named_blocks((Path(__file__).parent / "soak_queries.sql").read_text(encoding="utf-8"))
BATCH = 10
WORKER_ENV = {
    "MAX_WORKERS": 8,
    "VISIBILITY_TIMEOUT": "5s",
    "SHUTDOWN_GRACE_PERIOD": "10s",
    "LOG_LEVEL": "warning",
}
# SOAK_STATUS_RETENTION (e.g. 60s) runs the retention job at that period, so
# the report shows whether the status table stays flat under steady load.
RETENTION_VARIABLE = "SOAK_STATUS_RETENTION"


@dataclass(frozen=True)
class Plan:
    minutes: float
    rate: float  # payloads per second
    restart_every: float  # seconds between worker restarts

    @classmethod
    def from_env(cls) -> Plan:
        minutes = float(os.environ.get("SOAK_MINUTES", "30"))
        default_restart = 180.0 if minutes >= 10 else max(15.0, minutes * 60 / 4)
        return cls(
            minutes=minutes,
            rate=float(os.environ.get("SOAK_RATE", "50")),
            restart_every=float(os.environ.get("SOAK_RESTART_EVERY", str(default_restart))),
        )


@dataclass
class Load:
    """What the submitting thread did."""

    accepted_payloads: int = 0
    accepted_batches: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    task_ids: set[str] = field(default_factory=set)
    status_rows: list[tuple[float, int]] = field(default_factory=list)  # (seconds, rows)


def submit_steadily(base_url: str, url: str, rate: float, until: float, load: Load) -> None:
    """Batches of BATCH payloads on a fixed schedule (paced, so the rate holds however fast)."""
    interval = BATCH / rate
    next_at = time.monotonic()
    body = {"task_type": "soak", "url": url, "payloads": [{"data": n} for n in range(BATCH)]}
    with httpx.Client(base_url=base_url, timeout=15) as client:
        while (now := time.monotonic()) < until:
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            try:
                response = client.post("/tasks", json=body)
            except httpx.TransportError:
                load.errors += 1
                continue
            if response.status_code == 201:
                load.accepted_batches += 1
                load.accepted_payloads += BATCH
                load.task_ids.add(str(response.json()["task_id"]))
            else:
                load.refused[response.status_code] += 1


def status_rows(dsn: str) -> int:
    return sum(status_counts(dsn).values())


def status_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {str(s): int(n) for s, n in conn.execute(SQL["soak_status_counts"]).fetchall()}


@dataclass
class Workers:
    """The worker process of the moment, and what its restarts did."""

    settings: Settings
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: Counter[str] = field(default_factory=Counter)
    lifetimes: list[RssSeries] = field(default_factory=list)

    def start(self) -> None:
        retention = os.environ.get(RETENTION_VARIABLE)
        extra = {"STATUS_RETENTION": retention} if retention else {}
        self.process = start_worker(self.settings, self.log, **WORKER_ENV, **extra)
        self.lifetimes.append(RssSeries(f"worker {len(self.lifetimes) + 1}"))

    def restart(self, *, kill: bool) -> None:
        assert self.process is not None
        if kill:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.restarts["SIGKILL"] += 1
        else:
            code = stop(self.process, timeout=30)
            self.restarts[f"SIGTERM (exit {code})"] += 1
        self.start()


def run(plan: Plan, admin_dsn: str, workdir: Path) -> dict[str, object]:
    template = create_template(admin_dsn)
    name = f"taskq_soak_{uuid.uuid4().hex[:10]}"
    dsn = create_database(admin_dsn, name, template=template)
    target = Target(lambda _request: Reply(delay=0.005)).start()
    settings = Settings(postgres_dsn=dsn, dlq_queue_name=DLQ, retry_base_delay=0.1)
    workers = Workers(settings, workdir / "worker.log")
    api_rss = RssSeries("api")
    load = Load()
    started = time.monotonic()
    until = started + plan.minutes * 60
    try:
        with running_api(settings, workdir / "api.log") as (base_url, api):
            workers.start()
            submitter = threading.Thread(
                target=submit_steadily, args=(base_url, target.url, plan.rate, until, load)
            )
            submitter.start()
            next_restart = started + plan.restart_every
            last_report = started
            while (now := time.monotonic()) < until:
                elapsed = now - started
                api_rss.add(elapsed, tree_rss(api.pid))
                assert workers.process is not None
                workers.lifetimes[-1].add(elapsed, tree_rss(workers.process.pid))
                if now >= next_restart:
                    restarts = sum(workers.restarts.values())
                    workers.restart(kill=restarts % 3 == 2)
                    next_restart = now + plan.restart_every
                if now - last_report >= 30:
                    last_report = now
                    load.status_rows.append((elapsed, status_rows(dsn)))
                    print(
                        f"[soak] {elapsed / 60:5.1f} min: accepted {load.accepted_payloads}, "
                        f"delivered {target.count()}, statuses {status_counts(dsn)}, "
                        f"api {api_rss.samples[-1][1] / 2**20:.0f} MiB",
                        flush=True,
                    )
                time.sleep(min(5.0, max(0.0, until - time.monotonic())))
            submitter.join(timeout=30)
            # Drain: the last worker delivers what is left, within a bounded time;
            # what it cannot deliver by then is reported as lost or stuck below.
            try:
                wait_until(lambda: drained(dsn, target, load), timeout=180, interval=1.0)
            except AssertionError:
                print("[soak] the queue did not drain within 180 s", flush=True)
            assert workers.process is not None
            stop(workers.process, timeout=30)
        return judge(plan, dsn=dsn, target=target, load=load, workers=workers, api_rss=api_rss)
    finally:
        target.stop()
        drop_database(admin_dsn, name)
        drop_database(admin_dsn, template)


def drained(dsn: str, target: Target, load: Load) -> bool:
    """Every accepted payload delivered and nothing pending (retention may delete successes)."""
    if status_counts(dsn).get("pending", 0):
        return False
    keys = {request.headers.get("idempotency-key", "") for request in target.requests_snapshot()}
    return sum(1 for key in keys if key.split(":")[0] in load.task_ids) >= load.accepted_payloads


def judge(
    plan: Plan, *, dsn: str, target: Target, load: Load, workers: Workers, api_rss: RssSeries
) -> dict[str, object]:
    keys = Counter(
        request.headers.get("idempotency-key", "") for request in target.requests_snapshot()
    )
    accepted_keys = {key for key in keys if key.split(":")[0] in load.task_ids}
    warmup = min(60.0, plan.minutes * 60 / 6)
    worker_growth = [
        round(series.growth_mib(warmup=series.samples[0][0] + 15), 1)
        for series in workers.lifetimes
        if len(series.samples) >= 3
    ]
    with psycopg.connect(dsn) as conn:
        not_delivered = conn.execute(SQL["soak_not_delivered"]).fetchall()
    return {
        "minutes": plan.minutes,
        "rate_payloads_per_s": plan.rate,
        "accepted_payloads": load.accepted_payloads,
        "accepted_batches": load.accepted_batches,
        "refused_by_status": dict(load.refused),
        "transport_errors": load.errors,
        "delivered_requests": sum(keys.values()),
        "lost": load.accepted_payloads - len(accepted_keys),
        "duplicated": sum(count - 1 for count in keys.values()),
        "statuses": status_counts(dsn),
        "status_retention": os.environ.get(RETENTION_VARIABLE, "off (7d)"),
        "status_rows_every_30s": [rows for _, rows in load.status_rows],
        "not_delivered_sample": [list(map(str, row)) for row in not_delivered],
        "worker_restarts": dict(workers.restarts),
        "worker_rss_growth_mib_per_lifetime": worker_growth,
        "worker_rss_peak_mib": round(max(s.peak_mib() for s in workers.lifetimes), 1),
        "api_rss_growth_mib": round(api_rss.growth_mib(warmup=warmup), 1),
        "api_rss_peak_mib": round(api_rss.peak_mib(), 1),
    }


def main() -> int:
    plan = Plan.from_env()
    print(f"[soak] {plan}", flush=True)
    with server_dsn() as admin_dsn, tempfile.TemporaryDirectory(prefix="taskq-soak-") as tmp:
        report = run(plan, admin_dsn, Path(tmp))
    print(json.dumps(report, indent=2))
    sound = report["lost"] == 0 and not report["not_delivered_sample"]
    print("[soak] " + ("no message lost" if sound else "MESSAGES LOST OR STUCK"), file=sys.stderr)
    return 0 if sound else 1
