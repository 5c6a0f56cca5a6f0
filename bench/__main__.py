"""`python -m bench [--quick] [--only NAME,...] --results FILE.jsonl`: see docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from loguru import logger

from bench import rate_shaping, scenarios, tuning
from bench.cluster import API_MODULE, WORKER_MODULE, Cluster
from bench.db import Database, fresh_database, server_dsn, server_version
from bench.procs import CountingTarget, FastTarget, RssSampler, service_available
from bench.progress import Progress
from bench.report import Recorder, format_table
from bench.scenarios import Context, Sizes

SCENARIOS = {**scenarios.SCENARIOS, **tuning.SCENARIOS, **rate_shaping.SCENARIOS}


def machine_line(dsn: str) -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return (
        f"nproc {os.cpu_count()}, CPU {cpu}, Python {platform.python_version()}, "
        f"PostgreSQL {server_version(dsn)}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller pass, under 2 minutes")
    parser.add_argument(
        "--only", default="", help=f"comma-separated scenarios: {','.join(SCENARIOS)}"
    )
    parser.add_argument("--results", required=True, type=Path, help="JSON lines output file")
    parser.add_argument("--api-workers", type=int, default=1, help="granian workers of the API")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="run the fast-target burn-downs and bare loop N times, interleaved, and report "
        "medians (default 3, or 1 with --quick)",
    )
    parser.add_argument(
        "--no-nginx", action="store_true", help="use the Python fast target even if nginx exists"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="with py-spy on PATH: sample workers during burn-downs into DIR (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.chosen = chosen
    return args


def print_logs(workdir: Path) -> None:
    for log in sorted(workdir.glob("*.log")):
        tail = log.read_text(errors="replace")[-1500:]
        if tail.strip():
            print(f"--- {log.name} (tail)\n{tail}", file=sys.stderr)


@contextmanager
def scenario_database(ctx: Context, admin_dsn: str, template: str, name: str) -> Iterator[None]:
    """A clone of the migrated template and, when installed, an API on it, for one scenario."""
    with ExitStack() as stack:
        ctx.dsn = stack.enter_context(
            fresh_database(admin_dsn, f"{template}_{name}", template=template)
        )
        ctx.db = Database(ctx.dsn)
        stack.callback(ctx.db.close)
        ctx.cluster = None
        if ctx.api_available:
            cluster = Cluster(ctx.dsn, ctx.workdir, ctx.sampler)
            stack.callback(cluster.stop)
            ctx.progress.step(f"starting taskq-api (API_WORKERS={ctx.api_workers})")
            try:
                cluster.start_api(api_workers=ctx.api_workers)
                ctx.cluster = cluster
            except (RuntimeError, TimeoutError) as error:
                ctx.progress.step(f"taskq-api did not start: {error}")
                print_logs(ctx.workdir)
        yield


def run_scenario(ctx: Context, name: str, admin_dsn: str, template: str) -> None:
    """Run one scenario; once more if the server went away under it (a shared server restarts)."""
    for attempt in (1, 2):
        ctx.progress.step(
            f"scenario {name}" + (" (again, after the server came back)" * (attempt - 1))
        )
        try:
            with scenario_database(ctx, admin_dsn, template, name):
                SCENARIOS[name](ctx)
        except Exception as error:
            ctx.progress.step(f"scenario {name} FAILED: {type(error).__name__}: {error}")
            note = f"error: {type(error).__name__}: {error}"
            ctx.record(name, "error", None, "", note=note)
            print_logs(ctx.workdir)
            lost_server = isinstance(error, psycopg.OperationalError)
            if attempt == 1 and lost_server and wait_for_server(admin_dsn, timeout=90):
                continue
        return


def wait_for_server(dsn: str, *, timeout: float) -> bool:
    """Whether PostgreSQL answers again within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            server_version(dsn)
        except psycopg.Error:
            time.sleep(1)
        else:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logger.remove()  # the migrate step logs at INFO; the progress lines are enough here
    logger.add(sys.stderr, level="WARNING")
    progress = Progress()
    admin_dsn = server_dsn()
    machine = machine_line(admin_dsn)
    progress.step(f"machine: {machine}")
    api_available = service_available(API_MODULE)
    worker_available = service_available(WORKER_MODULE)
    progress.step(
        f"taskq-api {'found' if api_available else 'NOT available'}, "
        f"taskq-worker {'found' if worker_available else 'NOT available'}"
    )
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="taskq-bench-")))
        results = stack.enter_context(args.results.open("a", encoding="utf-8"))
        recorder = Recorder(results, {"run": run_id, "quick": args.quick, "machine": machine})
        template = f"taskq_bench_{run_id}"
        progress.step(f"creating and migrating template database {template}")
        stack.enter_context(fresh_database(admin_dsn, template))
        fast = FastTarget(workdir, use_nginx=not args.no_nginx)
        stack.callback(fast.stop)
        counting = CountingTarget()
        stack.callback(counting.stop)
        progress.step(f"fast target: {fast.kind} on {fast.url}; counting target on {counting.url}")
        sampler = RssSampler()
        stack.callback(sampler.close)
        ctx = Context(
            quick=args.quick,
            sizes=Sizes.for_mode(args.quick),
            progress=progress,
            recorder=recorder,
            workdir=workdir,
            fast=fast,
            counting=counting,
            sampler=sampler,
            api_available=api_available,
            api_workers=args.api_workers,
            worker_available=worker_available,
            profile_dir=args.profile,
            repeat=max(1, args.repeat or (1 if args.quick else 3)),
        )
        for name in args.chosen:
            run_scenario(ctx, name, admin_dsn, template)
        progress.step("done; stopping processes")
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\n{command}\n{machine}; fast target: {fast.kind}\n")
    print(format_table(recorder.rows))
    print(f"\nresults appended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
