"""CPU per deliver() call: the worker's session against one on requests' plain HTTPAdapter.

    python -m bench.deliver_cpu [--url URL] [--blocks 60] [--size 100]

One thread, one process, both sessions in turn in blocks of `size` calls
(order alternating), so load from other work on the machine falls on both
alike; the paired ratio of each block is the figure to read. Without --url
it starts nginx (or the Python target) answering 200. The plain adapter
stands for the worker's transport before the lean one (its egress check
runs per new connection only, so per call the two cost the same).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import requests

from bench.procs import FastTarget
from taskq_core.deliveries import Delivery, Succeeded
from taskq_core.egress import EgressPolicy
from taskq_core.models import QueuedCall
from taskq_core.settings import Settings
from taskq_core.status import TaskStatus
from taskq_worker.delivery import CallDefaults, NoCookies, deliver
from taskq_worker.redirects import TaskSession
from taskq_worker.supervisor import make_session

THREADS = 10  # the pool size the worker's default MAX_WORKERS gives its session


def plain_session() -> requests.Session:
    session = TaskSession()
    session.trust_env = False
    session.cookies = NoCookies()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=THREADS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def measure(url: str, blocks: int, size: int) -> None:
    settings = Settings(postgres_dsn="postgresql://127.0.0.1:9/none")
    sessions = {
        "plain HTTPAdapter": plain_session(),
        "worker session": make_session(THREADS, EgressPolicy.from_settings(settings)),
    }
    defaults = CallDefaults.from_settings(settings)
    call = QueuedCall(
        task_id="00000000-0000-0000-0000-000000000001",
        payload_id=0,
        task_type="bench",
        url=url,
        method="POST",
        data={"n": 1},
    )
    delivery = Delivery(
        "q", 1, "bench", "{}", call, 0, TaskStatus.PENDING, hidden_until=time.monotonic() + 1e9
    )
    rng = random.Random()
    for session in sessions.values():  # warm up: connections, caches
        for _ in range(200):
            outcome = deliver(delivery, session, defaults, rng)
        assert isinstance(outcome, Succeeded), outcome
    cpu: dict[str, list[float]] = {name: [] for name in sessions}
    user: dict[str, list[float]] = {name: [] for name in sessions}
    system: dict[str, list[float]] = {name: [] for name in sessions}
    names = list(sessions)
    for block in range(blocks):
        for name in names if block % 2 == 0 else names[::-1]:
            before, started = resource.getrusage(resource.RUSAGE_THREAD), time.thread_time()
            for _ in range(size):
                deliver(delivery, sessions[name], defaults, rng)
            after = resource.getrusage(resource.RUSAGE_THREAD)
            cpu[name].append((time.thread_time() - started) / size * 1e6)
            user[name].append((after.ru_utime - before.ru_utime) / size * 1e6)
            system[name].append((after.ru_stime - before.ru_stime) / size * 1e6)
    for name in names:
        print(
            f"{name}: median {statistics.median(cpu[name]):.0f} µs CPU per call "
            f"(user {statistics.median(user[name]):.0f}, system "
            f"{statistics.median(system[name]):.0f})"
        )
    ratios = sorted(new / old for old, new in zip(cpu[names[0]], cpu[names[1]], strict=True))
    quarter = len(ratios) // 4
    print(
        f"worker / plain, paired by block: median {statistics.median(ratios):.3f} "
        f"(quartiles {ratios[quarter]:.3f}-{ratios[-quarter - 1]:.3f}, {blocks} blocks of {size})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="a target answering 200 to POST (default: start nginx)")
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--size", type=int, default=100, help="calls per block")
    args = parser.parse_args()
    if args.url:
        measure(args.url, args.blocks, args.size)
        return
    with tempfile.TemporaryDirectory(prefix="deliver-cpu-") as workdir:
        target = FastTarget(Path(workdir))
        try:
            print(f"target: {target.kind} at {target.url}")
            measure(target.url, args.blocks, args.size)
        finally:
            target.stop()


if __name__ == "__main__":
    main()
