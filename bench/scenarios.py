"""The eight scenarios of the suite, each measured against a baseline taken in the same run."""

from __future__ import annotations

import functools
import itertools
import shutil
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baselines, peers
from bench.cluster import Cluster, session, task_body, wait_until_done
from bench.db import Database
from bench.procs import CountingTarget, CpuMeter, FastTarget, Managed, RssSampler
from bench.progress import Progress
from bench.report import Measurement, Recorder, clean
from bench.stats import between, max_in_window, percentile, ratio
from taskq_core.queue_names import queue_name_for

Check = Callable[[float, float | None], bool]
SKIP_NO_WORKER = "skipped: worker not available"
SKIP_NO_API = "skipped: API not available"


@dataclass
class Sizes:
    """How much work each scenario does; --quick shrinks everything to fit in 2 minutes."""

    bare_loop_calls: int
    submit_clients: int
    submit_batch1_requests: int
    submit_payloads: int
    fast_backlog: int
    slow_threads: tuple[int, ...]
    slow_seconds: float
    latency_seconds: float
    latency_backlog: int
    rate_runs: tuple[tuple[float, int, str], ...]  # max_rps, replicas, WORKER_PROCESSES
    rate_seconds: float
    fairness_fast: int
    fairness_slow_backlog: int
    memory_backlog: int
    memory_delivery_seconds: float
    retry_messages: int

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(
                bare_loop_calls=2000,
                submit_clients=4,
                submit_batch1_requests=300,
                submit_payloads=5000,
                fast_backlog=2000,
                slow_threads=(50, 200),
                slow_seconds=2.0,
                latency_seconds=2.5,
                latency_backlog=2000,
                rate_runs=((50, 2, "1"), (500, 2, "2")),
                rate_seconds=4.0,
                fairness_fast=1500,
                fairness_slow_backlog=2000,
                memory_backlog=15_000,
                memory_delivery_seconds=2.0,
                retry_messages=1000,
            )
        return cls(
            bare_loop_calls=10_000,
            submit_clients=4,
            submit_batch1_requests=2000,
            submit_payloads=30_000,
            fast_backlog=10_000,
            slow_threads=(10, 50, 200),
            slow_seconds=6.0,
            latency_seconds=10.0,
            latency_backlog=10_000,
            rate_runs=tuple(
                (rps, n, processes)
                for rps in (50.0, 500.0)
                for processes in ("1", "2")
                for n in (1, 2, 4)
            ),
            rate_seconds=20.0,
            fairness_fast=5000,
            fairness_slow_backlog=10_000,
            memory_backlog=100_000,
            memory_delivery_seconds=10.0,
            retry_messages=5000,
        )


@dataclass
class Context:
    quick: bool
    sizes: Sizes
    progress: Progress
    recorder: Recorder
    workdir: Path
    fast: FastTarget
    counting: CountingTarget
    sampler: RssSampler
    api_available: bool
    api_workers: int
    worker_available: bool
    cache: dict[str, float] = field(default_factory=dict)
    last_cpu: dict[str, float] = field(default_factory=dict)
    profile_dir: Path | None = None
    repeat: int = 1
    # Set per scenario: its own database (a clone of the migrated template) and API.
    dsn: str = ""
    db: Database = field(init=False)
    cluster: Cluster | None = None

    def record(
        self,
        scenario: str,
        variant: str,
        value: float | None,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_name: str = "",
        target: str = "",
        check: Check | None = None,
        note: str = "",
        extra: dict[str, float | int | str] | None = None,
    ) -> Measurement:
        value = clean(value)
        baseline = clean(baseline)
        measured_ratio = ratio(value, baseline)
        met = check(value, measured_ratio) if check is not None and value is not None else None
        row = Measurement(
            scenario=scenario,
            variant=variant,
            value=value,
            unit=unit,
            baseline=baseline,
            baseline_name=baseline_name,
            ratio=measured_ratio,
            target=target,
            met=met,
            note=note,
            extra=extra or {},
        )
        self.progress.step(
            f"  {scenario} / {variant}: {value if value is None else round(value, 3)} {unit}"
            + (f" (ratio {measured_ratio:.2f})" if measured_ratio is not None else "")
            + (f" {note}" if note else "")
        )
        return self.recorder.add(row)

    def skip(self, scenario: str, reason: str) -> None:
        self.record(scenario, "all", None, "", note=reason)

    def baseline(self, name: str, measure: Callable[[], float], unit: str) -> float:
        """A baseline measured once per run and recorded as its own row."""
        if name not in self.cache:
            self.progress.step(f"baseline: {name}")
            self.cache[name] = measure()
            self.record("baseline", name, self.cache[name], unit)
        return self.cache[name]

    def need_cluster(self, scenario: str, *, worker: bool = True) -> Cluster | None:
        if self.cluster is None:
            self.skip(scenario, SKIP_NO_API)
            return None
        if worker and not self.worker_available:
            self.skip(scenario, SKIP_NO_WORKER)
            return None
        return self.cluster


def ratio_at_least(minimum: float) -> Check:
    return lambda _value, measured: measured is not None and measured >= minimum


def value_at_most(maximum: float) -> Check:
    return lambda value, _ratio: value <= maximum


def ratio_at_most(maximum: float) -> Check:
    return lambda _value, measured: measured is not None and measured <= maximum


def ratio_between(low: float, high: float) -> Check:
    return lambda _value, measured: measured is not None and low <= measured <= high


# -- baselines shared by several scenarios -----------------------------------------------------


def raw_burn_down(ctx: Context, count: int) -> float:
    messages = baselines.queued_messages(ctx.fast.url, count)
    return ctx.baseline(
        f"raw PGMQ read(100)+delete of {count:,}",
        lambda: baselines.raw_burn_down(ctx.db, messages),
        "msg/s",
    )


def peer_loop(ctx: Context, count: int) -> float:
    messages = baselines.queued_messages(ctx.fast.url, count)
    return ctx.baseline(
        f"PGMQ read(100)+1 POST each+delete x{count:,}",
        lambda: baselines.pgmq_requests_loop(ctx.db, messages, ctx.fast.url),
        "jobs/s",
    )


# -- 1. submission -----------------------------------------------------------------------------


def submit_concurrently(
    cluster: Cluster, bodies: list[dict[str, Any]], clients: int, timeout: float = 300
) -> float:
    """Seconds for `clients` threads, each with its own session, to POST all `bodies`."""
    counter = itertools.count()
    errors: list[BaseException] = []
    deadline = time.monotonic() + timeout

    def run() -> None:
        client = session()
        try:
            while time.monotonic() < deadline and not errors:
                index = next(counter)
                if index >= len(bodies):
                    return
                reply = client.post(f"{cluster.api_url}/tasks", json=bodies[index], timeout=120)
                if reply.status_code != 201:
                    raise RuntimeError(f"POST /tasks -> {reply.status_code}: {reply.text[:200]}")
        except BaseException as error:
            errors.append(error)
        finally:
            client.close()

    seconds = baselines.run_in_threads(run, clients, timeout)
    if errors:
        raise errors[0]
    return seconds


def scenario_submission(ctx: Context) -> None:
    cluster = ctx.need_cluster("submission", worker=False)
    if cluster is None:
        return
    sizes = ctx.sizes
    for batch in (1, 100, 1000):
        total = sizes.submit_batch1_requests if batch == 1 else sizes.submit_payloads
        task_type = f"bench-submit-{batch}"
        url = ctx.fast.url
        bodies = [
            task_body(task_type, url, [{"n": start + i} for i in range(min(batch, total - start))])
            for start in range(0, total, batch)
        ]
        messages = baselines.queued_messages(url, total)
        ctx.progress.step(f"submission: raw pgmq.send_batch of {total:,} in batches of {batch}")
        raw = baselines.raw_send_batch(ctx.db, messages, batch)
        ctx.progress.step(
            f"submission: POST /tasks, {total:,} payloads in batches of {batch}, "
            f"{sizes.submit_clients} clients"
        )
        assert cluster.api is not None
        with CpuMeter([cluster.api.pid], dsn=ctx.dsn) as meter:
            seconds = submit_concurrently(cluster, bodies, sizes.submit_clients)
            shares = meter.shares()
        ctx.db.purge(queue_name_for(task_type))

        def per_thousand(cores: float, seconds: float = seconds, total: int = total) -> float:
            return 1000 * cores * seconds / total

        ctx.record(
            "submission",
            f"batch {batch}, {sizes.submit_clients} clients",
            total / seconds,
            "payloads/s",
            baseline=raw,
            baseline_name=f"raw send_batch({batch})",
            target=">= 0.3x raw" if batch == 100 else "",
            check=ratio_at_least(0.3) if batch == 100 else None,
            note=f"CPU-s per 1,000 payloads: API {per_thousand(shares['watched_cores']):.3f}, "
            f"PostgreSQL {per_thousand(shares['postgres_cores']):.3f}",
        )


# -- 2. delivery, fast target ------------------------------------------------------------------


def burn_down(
    ctx: Context,
    cluster: Cluster,
    task_type: str,
    count: int,
    *,
    replicas: int,
    url: str,
    max_workers: int | None = None,
    max_queue_buffer: int | None = None,
    max_retries: int = 3,
    retry_delay_ms: int = 100,
    extra_env: dict[str, str] | None = None,
    processes: str = "1",
) -> float | None:
    """Queue `count` calls, start `replicas` workers, time the drain; workers are stopped."""
    ctx.progress.step(f"  queueing {count:,} {task_type} through POST /tasks")
    bodies = [
        task_body(
            task_type,
            url,
            [{"n": start + i} for i in range(min(1000, count - start))],
            max_retries=max_retries,
            retry_delay_ms=retry_delay_ms,
        )
        for start in range(0, count, 1000)
    ]
    submit_concurrently(cluster, bodies, 2)
    ctx.progress.step(f"  starting {replicas} worker process(es), draining")
    kwargs: dict[str, Any] = {}
    if max_workers is not None:
        kwargs["max_workers"] = max_workers
    if max_queue_buffer is not None:
        kwargs["max_queue_buffer"] = max_queue_buffer
    if extra_env is not None:
        kwargs["extra_env"] = extra_env
    try:
        cluster.start_workers(replicas, processes=processes, **kwargs)
        target = ctx.fast.proc.pid if url == ctx.fast.url else ctx.counting.proc.pid
        pids = [worker.pid for worker in cluster.workers]
        with CpuMeter(pids, dsn=ctx.dsn, target=target) as meter:
            profilers = start_profilers(ctx, cluster, task_type)
            # A slow poll: counting status rows competes with the workers for the
            # same two cores; the rate comes from the outcomes' own timestamps.
            drained = wait_until_done(
                lambda: ctx.db.done(task_type), count, timeout=max(60.0, count / 50), poll=0.5
            )
            ctx.last_cpu = meter.shares()
        for profiler in profilers:
            profiler.stop(grace=15, sig=signal.SIGINT)  # py-spy writes its output on SIGINT
    finally:
        cluster.stop_workers()
        ctx.db.purge(queue_name_for(task_type))
    if drained.end_at is None:
        ctx.progress.step(f"  timed out with {drained.count:,}/{count:,} done")
    ctx.progress.step(f"  {cpu_note(ctx.last_cpu)}")
    return ctx.db.delivery_rate(task_type) if drained.end_at is not None else None


def start_profilers(ctx: Context, cluster: Cluster, task_type: str) -> list[Managed]:
    """With --profile DIR and py-spy on PATH: sample every worker until it is stopped."""
    if ctx.profile_dir is None:
        return []
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        ctx.progress.step("  --profile given but py-spy is not on PATH; not profiling")
        return []
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    profilers = []
    for worker in cluster.workers:
        output = ctx.profile_dir / f"{task_type}-{worker.name}.txt"
        argv = [py_spy, "record", "--pid", str(worker.pid), "--format", "raw", "--rate", "200"]
        # GIL holders (CPU work), in every worker process of the replica.
        argv += ["--gil", "--nonblocking", "--subprocesses", "--output", str(output)]
        profilers.append(Managed(f"py-spy-{worker.name}", argv, log=output.with_suffix(".log")))
    ctx.progress.step(f"  py-spy sampling {len(profilers)} worker(s) into {ctx.profile_dir}")
    return profilers


def cpu_note(shares: dict[str, float]) -> str:
    """Where the cores went during a drain (start-up included)."""
    if not shares:
        return ""
    return (
        f"CPU cores: workers {shares['watched_cores']:.2f}, "
        f"postgres {shares['postgres_cores']:.2f}, target {shares.get('target_cores', 0.0):.2f}, "
        f"machine {shares['machine_cores']:.2f}"
    )


def median_or_none(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def runs_text(values: list[float | None]) -> str:
    return ", ".join("-" if value is None else f"{value:.0f}" for value in values)


@dataclass(frozen=True)
class FastVariant:
    """One way of running workers in the fast-target burn-down."""

    key: str
    replicas: int
    processes: str  # WORKER_PROCESSES of each replica
    label: str
    minimum_vs_bare: float | None  # target ratio to the bare requests loop
    env: tuple[tuple[str, str], ...] = ()  # settings beyond the defaults


# With affinity off, the default's gain from keeping threads on one CPU shows in every run.
AFFINITY_OFF = (("WORKER_CPU_AFFINITY", "off"),)
FAST_VARIANTS = (
    FastVariant("1", 1, "1", "1 replica, WORKER_PROCESSES=1", 0.8),
    FastVariant("1-off", 1, "1", "1 replica, WORKER_PROCESSES=1, affinity off", None, AFFINITY_OFF),
    FastVariant("2", 2, "1", "2 replicas, WORKER_PROCESSES=1", 1.2),
    FastVariant("auto", 1, "auto", "1 replica, WORKER_PROCESSES=auto", 1.4),
    FastVariant(
        "auto-off", 1, "auto", "1 replica, WORKER_PROCESSES=auto, affinity off", None, AFFINITY_OFF
    ),
)


def scenario_fast(ctx: Context) -> None:
    """Burn-downs, the bare loop and the peers, interleaved `--repeat` times; medians reported."""
    count = ctx.sizes.fast_backlog
    raw = raw_burn_down(ctx, count)
    naive = peer_loop(ctx, count)
    peer = peers.pgqueuer_aiohttp(ctx, count)
    cluster = ctx.need_cluster("fast target")
    bare_runs: list[float | None] = []
    rates: dict[str, list[float | None]] = {variant.key: [] for variant in FAST_VARIANTS}
    cpu: dict[str, dict[str, float]] = {}
    peaks: dict[str, float] = {}
    for run in range(ctx.repeat):
        calls = ctx.sizes.bare_loop_calls
        ctx.progress.step(f"fast target: bare requests.Session loop, {calls:,} calls ({run + 1})")
        bare_runs.append(baselines.bare_requests_loop(ctx.fast.url, calls))
        if cluster is None:
            continue
        for variant in FAST_VARIANTS:
            ctx.progress.step(f"fast target: {count:,} burn-down, {variant.label} ({run + 1})")
            for label in (f"worker{i}" for i in range(variant.replicas)):
                ctx.sampler.reset(label)
            task_type = f"bench-fast-{variant.key}-{run}"
            rates[variant.key].append(
                burn_down(
                    ctx,
                    cluster,
                    task_type,
                    count,
                    replicas=variant.replicas,
                    url=ctx.fast.url,
                    processes=variant.processes,
                    extra_env=dict(variant.env),
                )
            )
            cpu[variant.key] = dict(ctx.last_cpu)
            peak = ctx.sampler.peak_mb("worker0") or 0.0
            peaks[variant.key] = max(peaks.get(variant.key, 0.0), peak)
    bare = median_or_none(bare_runs)
    ctx.record(
        "baseline",
        f"bare requests.Session loop x{ctx.sizes.bare_loop_calls:,} -> {ctx.fast.kind}",
        bare,
        "calls/s",
        note=f"median of {ctx.repeat}: {runs_text(bare_runs)}" if ctx.repeat > 1 else "",
    )
    if cluster is None:
        return
    for variant in FAST_VARIANTS:
        rate = median_or_none(rates[variant.key])
        runs = (
            f"median of {ctx.repeat}: {runs_text(rates[variant.key])}; " if ctx.repeat > 1 else ""
        )
        shares = cpu[variant.key]
        ctx.record(
            "fast target",
            f"{variant.label}, {count:,} backlog",
            rate,
            "calls/s",
            baseline=bare,
            baseline_name="bare loop",
            target=f">= {variant.minimum_vs_bare}x bare loop" if variant.minimum_vs_bare else "",
            check=ratio_at_least(variant.minimum_vs_bare) if variant.minimum_vs_bare else None,
            note=runs + cpu_note(shares),
            extra={**shares, **cpu_per_thousand(shares, count)},
        )
        ctx.record(
            "fast target",
            f"{variant.label} vs raw read+delete",
            rate,
            "calls/s",
            baseline=raw,
            baseline_name="raw read+delete",
        )
        ctx.record(
            "memory", f"worker peak RSS, fast delivery, {variant.label}", peaks[variant.key], "MB"
        )
    single, auto = median_or_none(rates["1"]), median_or_none(rates["auto"])
    for on, off in (("1", "1-off"), ("auto", "auto-off")):
        ctx.record(
            "fast target",
            f"WORKER_PROCESSES={on}: affinity auto (default) vs off",
            median_or_none(rates[on]),
            "calls/s",
            baseline=median_or_none(rates[off]),
            baseline_name="affinity off",
        )
    ctx.record(
        "fast target",
        "WORKER_PROCESSES=1 vs naive PGMQ consumer",
        single,
        "calls/s",
        baseline=naive,
        baseline_name="naive PGMQ consumer",
        target=">= 0.95x",
        check=ratio_at_least(0.95),
    )
    if peer is not None:
        ctx.record(
            "fast target",
            "WORKER_PROCESSES=auto vs pgqueuer+aiohttp",
            auto,
            "calls/s",
            baseline=peer.rate,
            baseline_name="pgqueuer+aiohttp",
            target=">= 1.1x",
            check=ratio_at_least(1.1),
        )
        for variant in FAST_VARIANTS:
            ours = cpu_per_thousand(cpu[variant.key], count)
            theirs = peer.cpu_per_thousand
            if ours and theirs:
                ctx.record(
                    "cpu per 1,000 deliveries",
                    f"{variant.label}: worker + PostgreSQL",
                    ours["worker_cpu_s"] + ours["postgres_cpu_s"],
                    "CPU-s",
                    baseline=theirs["worker_cpu_s"] + theirs["postgres_cpu_s"],
                    baseline_name="pgqueuer+aiohttp",
                    target="" if variant.env else "<= 1.3x",
                    check=None if variant.env else ratio_at_most(1.3),
                    note=f"worker {ours['worker_cpu_s']:.3f}, PostgreSQL "
                    f"{ours['postgres_cpu_s']:.3f}, target {ours['target_cpu_s']:.3f}; peer: "
                    f"{theirs['worker_cpu_s']:.3f} + {theirs['postgres_cpu_s']:.3f} + "
                    f"{theirs['target_cpu_s']:.3f}",
                )


def cpu_per_thousand(shares: dict[str, float], count: int) -> dict[str, float]:
    """CPU-seconds per 1,000 deliveries: what was used while `count` were delivered.

    From the CPU-seconds themselves, not cores over a rate: the meter's interval
    (start-up, the done poll) is longer than the drain the rate is taken from.
    """
    if not shares or not count:
        return {}
    seconds = shares["wall_seconds"]
    return {
        "worker_cpu_s": 1000 * shares["watched_cores"] * seconds / count,
        "postgres_cpu_s": 1000 * shares["postgres_cores"] * seconds / count,
        "target_cpu_s": 1000 * shares.get("target_cores", 0.0) * seconds / count,
    }


# -- 3. delivery, slow target ------------------------------------------------------------------


def scenario_slow(ctx: Context) -> None:
    cluster = ctx.need_cluster("slow target")
    if cluster is None:
        return
    latency = 0.05
    try:
        for threads in ctx.sizes.slow_threads:
            ctx.counting.reset(delay_ms=latency * 1000)
            ideal = baselines.ideal_rate(threads, latency)
            count = int(min(ideal, 1500) * ctx.sizes.slow_seconds)
            ctx.progress.step(f"slow target (50 ms): MAX_WORKERS={threads}, {count:,} calls")
            rate = burn_down(
                ctx,
                cluster,
                f"bench-slow-{threads}",
                count,
                replicas=1,
                url=ctx.counting.url,
                max_workers=threads,  # MAX_QUEUE_BUFFER stays auto: 4 per thread
            )
            checked = threads in (50, 200)
            in_flight = ctx.counting.stats().peak_in_flight
            calls = int(min(ideal, 1500) * ctx.sizes.slow_seconds / 2)
            threaded = ctx.baseline(
                f"{threads} threads sharing a requests.Session, 50 ms target, {calls:,} calls",
                functools.partial(
                    baselines.threaded_requests_loop, ctx.counting.url, threads, calls
                ),
                "calls/s",
            )
            ctx.record(
                "slow target",
                f"MAX_WORKERS={threads}, 50 ms",
                rate,
                "calls/s",
                baseline=ideal,
                baseline_name="threads/latency",
                target=">= 0.8x ideal" if checked else "",
                check=ratio_at_least(0.8) if checked else None,
                note=f"peak {in_flight} in flight at the target; {cpu_note(ctx.last_cpu)}",
                extra={"peak_in_flight": in_flight, **ctx.last_cpu},
            )
            ctx.record(
                "slow target",
                f"MAX_WORKERS={threads} vs the same threads in one loop",
                rate,
                "calls/s",
                baseline=threaded,
                baseline_name="threaded requests loop",
            )
        slow_processes(ctx, cluster, latency)
    finally:
        ctx.counting.reset()


SLOW_PROCESSES = 2  # this machine's cores; WORKER_PROCESSES=auto would pick the same
SLOW_THREADS_PER_PROCESS = 100


def slow_processes(ctx: Context, cluster: Cluster, latency: float) -> None:
    """200 calls in flight per replica as processes x threads: >= 0.8 x 200 / latency."""
    threads = SLOW_PROCESSES * SLOW_THREADS_PER_PROCESS
    ctx.counting.reset(delay_ms=latency * 1000)
    ideal = baselines.ideal_rate(threads, latency)
    count = int(ideal * ctx.sizes.slow_seconds)
    shape = f"WORKER_PROCESSES={SLOW_PROCESSES} x MAX_WORKERS={SLOW_THREADS_PER_PROCESS}"
    ctx.progress.step(f"slow target (50 ms): {shape}, {count:,} calls")
    rate = burn_down(
        ctx,
        cluster,
        f"bench-slow-{SLOW_PROCESSES}x{SLOW_THREADS_PER_PROCESS}",
        count,
        replicas=1,
        url=ctx.counting.url,
        max_workers=SLOW_THREADS_PER_PROCESS,  # MAX_QUEUE_BUFFER stays auto: 4 per thread
        processes=str(SLOW_PROCESSES),
    )
    in_flight = ctx.counting.stats().peak_in_flight
    ctx.record(
        "slow target",
        f"{shape} (200 in flight), 50 ms",
        rate,
        "calls/s",
        baseline=ideal,
        baseline_name="threads/latency",
        target=">= 0.8x ideal",
        check=ratio_at_least(0.8),
        note=f"peak {in_flight} in flight at the target; {cpu_note(ctx.last_cpu)}",
        extra={"peak_in_flight": in_flight, **ctx.last_cpu},
    )


# -- 4. latency --------------------------------------------------------------------------------


def paced_submissions(ctx: Context, cluster: Cluster, task_type: str, seconds: float) -> int:
    """POST one single-payload task every 50 ms (20/s), each carrying its submit time."""
    interval = 0.05
    total = int(seconds / interval)
    next_at = time.monotonic()
    for index in range(total):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        cluster.submit(task_type, ctx.counting.url, [{"n": index, "sent_at": time.time()}])
        next_at += interval
    return total


def measure_latency(
    ctx: Context, cluster: Cluster, task_type: str, variant: str, *, idle: bool
) -> None:
    ctx.counting.reset()
    total = paced_submissions(ctx, cluster, task_type, ctx.sizes.latency_seconds)
    deadline = time.monotonic() + 30
    while ctx.counting.summary().latencies < total and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = ctx.counting.stats()
    latencies = [x * 1000 for x in stats.latencies]
    note = "" if len(latencies) >= total else f"only {len(latencies)}/{total} arrived"
    limits = {50: 50.0, 99: 250.0} if idle else {}
    for pct in (50, 95, 99):
        limit = limits.get(pct)
        ctx.record(
            "latency",
            f"{variant} p{pct}",
            percentile(latencies, pct) if latencies else None,
            "ms",
            target=f"<= {limit:.0f} ms" if limit is not None else "",
            check=value_at_most(limit) if limit is not None else None,
            note=note,
        )


def scenario_latency(ctx: Context) -> None:
    cluster = ctx.need_cluster("latency")
    if cluster is None:
        return
    light, heavy = "bench-latency", "bench-latency-backlog"
    cluster.configure_type(light, None)
    cluster.configure_type(heavy, None)
    try:
        # Each worker process LISTENs on its own connection: the idle latency
        # with two processes shows what that choice costs new work.
        cluster.start_workers(1, processes="2")
        ctx.progress.step(
            f"latency: 20 tasks/s for {ctx.sizes.latency_seconds:.0f} s, idle, 2 proc"
        )
        measure_latency(ctx, cluster, light, "idle, WORKER_PROCESSES=2, 20/s", idle=True)
        cluster.stop_workers()
        cluster.start_workers(1)
        ctx.progress.step(f"latency: 20 tasks/s for {ctx.sizes.latency_seconds:.0f} s, idle")
        measure_latency(ctx, cluster, light, "idle, 20/s", idle=True)
        backlog = ctx.sizes.latency_backlog
        ctx.progress.step(f"latency: 20 tasks/s while another type drains {backlog:,}")
        cluster.submit_many(heavy, ctx.fast.url, backlog)
        measure_latency(ctx, cluster, light, f"20/s beside a {backlog:,} backlog", idle=False)
    finally:
        cluster.stop_workers()
        ctx.db.purge(queue_name_for(heavy))
        ctx.db.purge(queue_name_for(light))


# -- 5. rate accuracy --------------------------------------------------------------------------


def scenario_rate(ctx: Context) -> None:
    cluster = ctx.need_cluster("rate accuracy")
    if cluster is None:
        return
    seconds = ctx.sizes.rate_seconds
    for max_rps, replicas, processes in ctx.sizes.rate_runs:
        task_type = f"bench-rate-{max_rps:g}-{replicas}-{processes}"
        shape = f"{replicas} replica(s) x {processes} proc"
        ctx.progress.step(f"rate: max_rps={max_rps:g}, {shape}, {seconds:.0f} s")
        cluster.configure_type(task_type, max_rps)
        cluster.submit_many(task_type, ctx.counting.url, int(max_rps * (seconds + 4) * 1.2))
        ctx.counting.reset()
        try:
            cluster.start_workers(replicas, processes=processes)
            pids = [worker.pid for worker in cluster.workers]
            with CpuMeter(pids, dsn=ctx.dsn) as meter:
                deadline = time.monotonic() + seconds + 20
                first: float | None = None
                while time.monotonic() < deadline:
                    first = ctx.counting.summary().first
                    if first is not None and time.time() >= first + seconds + 0.2:
                        break
                    time.sleep(0.2)
                ctx.last_cpu = meter.shares()
        finally:
            cluster.stop_workers()
            ctx.db.purge(queue_name_for(task_type))
        arrivals = ctx.counting.arrivals()
        if first is None or not arrivals:
            ctx.record(
                "rate accuracy",
                f"max_rps {max_rps:g}, {shape}",
                None,
                "calls/s",
                note="no call arrived",
            )
            continue
        window = between(arrivals, first, first + seconds)
        achieved = len(window) / seconds
        peak = max_in_window(window, 1.0)
        ctx.record(
            "rate accuracy",
            f"max_rps {max_rps:g}, {shape}, {seconds:.0f} s",
            achieved,
            "calls/s",
            baseline=max_rps,
            baseline_name="max_rps",
            target="0.97-1.02x max_rps",
            check=ratio_between(0.97, 1.02),
            note=cpu_note(ctx.last_cpu),
            extra=dict(ctx.last_cpu),
        )
        ctx.record(
            "rate accuracy",
            f"max_rps {max_rps:g}, {shape}: busiest 1 s",
            peak,
            "calls",
            baseline=max_rps,
            baseline_name="max_rps",
            target="<= 1.1x max_rps",
            check=ratio_at_most(1.1),
        )
    ctx.counting.reset()


# -- 6. fairness -------------------------------------------------------------------------------


def timed_fast_type(ctx: Context, cluster: Cluster, task_type: str, count: int) -> float | None:
    """Seconds from the start of submitting `count` calls to the last one done (workers run)."""
    started = time.monotonic()
    cluster.submit_many(task_type, ctx.fast.url, count)
    drained = wait_until_done(lambda: ctx.db.done(task_type), count, timeout=max(60, count / 20))
    return None if drained.end_at is None else drained.end_at - started


def scenario_fairness(ctx: Context) -> None:
    cluster = ctx.need_cluster("fairness")
    if cluster is None:
        return
    count, slow_backlog = ctx.sizes.fairness_fast, ctx.sizes.fairness_slow_backlog
    solo_type, mixed_type, slow_type = "bench-fair-solo", "bench-fair-mixed", "bench-fair-1rps"
    cluster.configure_type(solo_type, None)
    cluster.configure_type(mixed_type, None)
    cluster.configure_type(slow_type, 1)
    try:
        cluster.start_workers(1)
        ctx.progress.step(f"fairness: unlimited type alone, {count:,} calls")
        solo = timed_fast_type(ctx, cluster, solo_type, count)
        ctx.progress.step(f"fairness: same beside a 1 rps type with a {slow_backlog:,} backlog")
        cluster.submit_many(slow_type, ctx.counting.url, slow_backlog)
        mixed = timed_fast_type(ctx, cluster, mixed_type, count)
    finally:
        cluster.stop_workers()
        for task_type in (solo_type, mixed_type, slow_type):
            ctx.db.purge(queue_name_for(task_type))
    ctx.record(
        "fairness",
        f"{count:,} unlimited beside 1 rps x {slow_backlog:,}",
        mixed,
        "s",
        baseline=solo,
        baseline_name="solo time",
        target="<= 1.5x solo",
        check=ratio_at_most(1.5),
    )


# -- 7. memory ---------------------------------------------------------------------------------


def scenario_memory(ctx: Context) -> None:
    cluster = ctx.need_cluster("memory", worker=False)
    if cluster is None:
        return
    backlog = ctx.sizes.memory_backlog
    task_type = "bench-memory"
    ctx.sampler.reset("api")
    ctx.progress.step(f"memory: queueing a {backlog:,} backlog through POST /tasks")
    bodies = [
        task_body(task_type, ctx.fast.url, [{"n": start + i} for i in range(1000)])
        for start in range(0, backlog, 1000)
    ]
    submit_concurrently(cluster, bodies, 4)
    ctx.record(
        "memory", "API peak RSS (process tree) during submission", ctx.sampler.peak_mb("api"), "MB"
    )
    if not ctx.worker_available:
        ctx.skip("memory", SKIP_NO_WORKER)
        ctx.db.purge(queue_name_for(task_type))
        return
    ctx.sampler.reset("worker0")
    seconds = ctx.sizes.memory_delivery_seconds
    ctx.progress.step(f"memory: one worker delivering from the backlog for {seconds:.0f} s")
    try:
        cluster.start_workers(1)
        time.sleep(seconds)
        delivered = ctx.db.done(task_type)
    finally:
        cluster.stop_workers()
        ctx.db.purge(queue_name_for(task_type))
    ctx.record(
        "memory",
        f"worker peak RSS, {backlog:,} backlog",
        ctx.sampler.peak_mb("worker0"),
        "MB",
        target="<= 150 MB",
        check=value_at_most(150),
        extra={"delivered": delivered},
    )


# -- 8. retry path -----------------------------------------------------------------------------


def scenario_retry(ctx: Context) -> None:
    cluster = ctx.need_cluster("retry path")
    if cluster is None:
        return
    count = ctx.sizes.retry_messages
    try:
        ctx.progress.step(f"retry: {count:,} calls, none failing")
        ctx.counting.reset()
        clean_rate = burn_down(
            ctx, cluster, "bench-retry-0", count, replicas=1, url=ctx.counting.url
        )
        ctx.progress.step(f"retry: {count:,} calls, 20% fail once with 500")
        ctx.counting.reset(fail_pct=20)
        rate = burn_down(
            ctx,
            cluster,
            "bench-retry-20",
            count,
            replicas=1,
            url=ctx.counting.url,
            retry_delay_ms=100,
        )
        stats = ctx.counting.stats()
        succeeded = ctx.db.status_counts("bench-retry-20").get("success", 0)
    finally:
        ctx.counting.reset()
    ctx.record(
        "retry path",
        "20% fail once with 500",
        rate,
        "calls/s",
        baseline=clean_rate,
        baseline_name="same, no failures",
        note=f"{stats.failures} failed once, {succeeded}/{count} succeeded",
        extra={"failures": stats.failures, "succeeded": succeeded},
    )


# -- 9. issue 15 features: what signing and response capture cost --------------------------


def scenario_features(ctx: Context) -> None:
    """Burn-downs plain, with response capture, signed; then scheduled delivery's lateness."""
    cluster = ctx.need_cluster("features")
    if cluster is None:
        return
    count = ctx.sizes.fast_backlog
    no_capture = {"RESPONSE_CAPTURE_BYTES": "0"}
    cluster.configure_type(
        "bench-signed", None, signing_secrets=["bench-signing-secret-" + "s" * 20]
    )
    variants = (
        ("plain (no capture, unsigned)", "bench-plain", no_capture),
        ("response capture 4 KiB", "bench-capture", {"RESPONSE_CAPTURE_BYTES": "4096"}),
        ("signed (HMAC-SHA256)", "bench-signed", no_capture),
    )
    plain: float | None = None
    for label, task_type, env in variants:
        ctx.progress.step(f"features: {count:,} burn-down, {label}")
        rate = burn_down(
            ctx, cluster, task_type, count, replicas=1, url=ctx.fast.url, extra_env=env
        )
        if plain is None:
            plain = rate
            ctx.record("features", label, rate, "calls/s", note=cpu_note(ctx.last_cpu))
            continue
        ctx.record(
            "features",
            label,
            rate,
            "calls/s",
            baseline=plain,
            baseline_name="plain",
            note=cpu_note(ctx.last_cpu),
        )
    ctx.progress.step("features: 100 payloads scheduled over 5 s, idle worker")
    measure_scheduled(ctx, cluster)


def measure_scheduled(ctx: Context, cluster: Cluster) -> None:
    """Payloads held with `not_before` over a few seconds reach an idle worker on time.

    Each payload carries its scheduled time as `sent_at`, so the target's latency is
    the lateness (negative: delivered early, which must never happen).
    """
    task_type = "bench-scheduled"
    cluster.configure_type(task_type, None)
    count, spread = 100, 5.0
    ctx.counting.reset()
    first_due = time.time() + 2.0
    due = [first_due + spread * index / count for index in range(count)]
    body = task_body(task_type, ctx.counting.url, [])
    body["payloads"] = [
        {
            "data": {"n": index, "sent_at": at},
            "not_before": datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds"),
        }
        for index, at in enumerate(due)
    ]
    try:
        cluster.start_workers(1)
        reply = cluster.client.post(f"{cluster.api_url}/tasks", json=body, timeout=60)
        if reply.status_code != 201:
            raise RuntimeError(f"POST /tasks -> {reply.status_code}: {reply.text[:300]}")
        deadline = time.monotonic() + spread + 30
        while ctx.counting.summary().latencies < count and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        cluster.stop_workers()
        ctx.db.purge(queue_name_for(task_type))
    lateness = [x * 1000 for x in ctx.counting.stats().latencies]
    early = sum(1 for value in lateness if value < 0)
    note = f"{len(lateness)}/{count} arrived, {early} early"
    for pct in (50, 99):
        ctx.record(
            "features",
            f"scheduled delivery, lateness p{pct} (idle worker)",
            percentile(lateness, pct) if lateness else None,
            "ms",
            target="<= 100 ms",
            check=value_at_most(100.0),
            note=note,
        )


SCENARIOS: dict[str, Callable[[Context], None]] = {
    "submission": scenario_submission,
    "fast": scenario_fast,
    "slow": scenario_slow,
    "latency": scenario_latency,
    "rate": scenario_rate,
    "fairness": scenario_fairness,
    "memory": scenario_memory,
    "retry": scenario_retry,
    "features": scenario_features,
}
