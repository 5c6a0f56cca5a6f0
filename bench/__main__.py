"""`python -m bench [--quick] [--only NAME,...] --results FILE.jsonl`: see docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.cluster import API_MODULE, WORKER_MODULE, Cluster
from bench.db import Database, fresh_database, server_dsn, server_version
from bench.procs import CountingTarget, FastTarget, RssSampler, service_available
from bench.progress import Progress
from bench.report import Recorder, format_table
from bench.scenarios import SCENARIOS, Context, Sizes


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
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.chosen = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="taskq-bench-")))
        results = stack.enter_context(args.results.open("a", encoding="utf-8"))
        recorder = Recorder(results)
        progress.step(f"creating and migrating database taskq_bench_{os.getpid()}")
        dsn = stack.enter_context(fresh_database(admin_dsn, f"taskq_bench_{os.getpid()}"))
        db = Database(dsn)
        stack.callback(db.close)
        fast = FastTarget(workdir)
        stack.callback(fast.stop)
        counting = CountingTarget()
        stack.callback(counting.stop)
        progress.step(f"fast target: {fast.kind} on {fast.url}; counting target on {counting.url}")
        sampler = RssSampler()
        stack.callback(sampler.close)
        cluster = None
        if api_available:
            cluster = Cluster(dsn, workdir, sampler)
            stack.callback(cluster.stop)
            progress.step(f"starting taskq-api (API_WORKERS={args.api_workers})")
            try:
                cluster.start_api(api_workers=args.api_workers)
            except (RuntimeError, TimeoutError) as error:
                progress.step(f"taskq-api did not start: {error}")
                log = workdir / "api.log"
                if log.exists():
                    print(log.read_text()[-3000:], file=sys.stderr)
                cluster.stop()
                cluster = None
        ctx = Context(
            quick=args.quick,
            sizes=Sizes.for_mode(args.quick),
            progress=progress,
            recorder=recorder,
            db=db,
            dsn=dsn,
            workdir=workdir,
            fast=fast,
            counting=counting,
            sampler=sampler,
            cluster=cluster,
            worker_available=worker_available,
        )
        for name in args.chosen:
            progress.step(f"scenario {name}")
            try:
                SCENARIOS[name](ctx)
            except Exception as error:
                progress.step(f"scenario {name} FAILED: {type(error).__name__}: {error}")
                ctx.record(name, "error", None, "", note=f"error: {type(error).__name__}: {error}")
                for log in sorted(workdir.glob("*.log")):
                    tail = log.read_text(errors="replace")[-1500:]
                    if tail.strip():
                        print(f"--- {log.name} (tail)\n{tail}", file=sys.stderr)
                if cluster is not None:
                    cluster.stop_workers()
        progress.step("done; stopping processes")
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\n{command}\n{machine}; fast target: {fast.kind}\n")
    print(format_table(recorder.rows))
    print(f"\nresults appended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
