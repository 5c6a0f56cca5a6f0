"""Peer systems the suite measures taskq against, run from .venv-bench-peers (never .venv).

`make bench` creates that environment from bench/requirements-peers.txt; the
peers are scripts in bench/peer_programs run with its interpreter, so the
project never imports them.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from bench.procs import CpuMeter

if TYPE_CHECKING:
    from bench.scenarios import Context

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-bench-peers" / "bin" / "python"
PROGRAMS = ROOT / "bench" / "peer_programs"


@dataclass(frozen=True)
class PeerResult:
    rate: float
    cpu_per_thousand: dict[str, float]  # worker_cpu_s and postgres_cpu_s per 1,000 jobs


def url_dsn(dsn: str) -> str:
    """`dsn` as a postgresql:// URL: asyncpg reads no other form."""
    params = conninfo_to_dict(dsn)
    user = quote(str(params.get("user", "postgres")), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    host = params.get("host", "127.0.0.1")
    port = params.get("port", 5432)
    return f"postgresql://{auth}@{host}:{port}/{quote(str(params.get('dbname', 'postgres')))}"


def pgqueuer_aiohttp(ctx: Context, count: int) -> PeerResult | None:
    """pgqueuer 1.6 + aiohttp, one process, draining `count` jobs against the fast target."""
    name = f"pgqueuer 1.6 + aiohttp, 1 process, x{count:,}"
    if name in ctx.cache:
        return PeerResult(
            ctx.cache[name],
            {
                key: ctx.cache[f"{name} {key}"]
                for key in ("worker_cpu_s", "postgres_cpu_s", "target_cpu_s")
            },
        )
    if not PEERS_PYTHON.exists():
        ctx.progress.step(f"{name}: skipped, {PEERS_PYTHON} missing (make bench creates it)")
        return None
    ctx.progress.step(f"baseline: {name}")
    base = [str(PEERS_PYTHON), str(PROGRAMS / "pgqueuer_aiohttp.py")]
    dsn = url_dsn(ctx.dsn)
    try:
        subprocess.run(
            [*base, "enqueue", "--dsn", dsn, "--count", str(count)],
            check=True,
            cwd=ROOT,
            timeout=300,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        ctx.progress.step(f"{name}: could not queue the jobs ({error})")
        return None
    children_before = _reaped_children_cpu()
    started = time.monotonic()
    consumer = subprocess.Popen(
        [*base, "consume", "--dsn", dsn, "--url", ctx.fast.url, "--count", str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    deadline = started + max(120.0, count / 20)
    # Its PostgreSQL backends are sampled while they live (bench.pg_cpu): read
    # once the consumer is gone, they would count nothing.
    with CpuMeter([consumer.pid], dsn=ctx.dsn, target=ctx.fast.proc.pid) as meter:
        output, _ = consumer.communicate(timeout=max(1.0, deadline - time.monotonic()))
        shares = meter.shares()
    # The consumer's own CPU, whole life, from the kernel's account of reaped children.
    consumer_cpu = _reaped_children_cpu() - children_before
    if consumer.returncode != 0:
        ctx.progress.step(f"{name}: failed (status {consumer.returncode})")
        return None
    rate = float(json.loads(output)["rate"])
    # CPU-seconds per 1,000 jobs, as bench.scenarios.cpu_per_thousand counts taskq's.
    per_thousand = {
        "worker_cpu_s": 1000 * consumer_cpu / count,
        "postgres_cpu_s": 1000 * shares["postgres_cores"] * shares["wall_seconds"] / count,
        "target_cpu_s": 1000 * shares["target_cores"] * shares["wall_seconds"] / count,
    }
    ctx.cache[name] = rate
    for key, value in per_thousand.items():
        ctx.cache[f"{name} {key}"] = value
    ctx.record(
        "baseline",
        name,
        rate,
        "jobs/s",
        note=f"CPU-s per 1,000: process {per_thousand['worker_cpu_s']:.3f}, "
        f"PostgreSQL {per_thousand['postgres_cpu_s']:.3f}, "
        f"target {per_thousand['target_cpu_s']:.3f}",
    )
    return PeerResult(rate, per_thousand)


def _reaped_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
