"""Processes the suite starts and stops: targets, the API, workers; peak RSS sampling."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from bench.db import server_dsn
from bench.pg_cpu import DatabaseCpu

BIN = Path(sys.executable).parent
LOCALHOST = "127.0.0.1"

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"ok":true}}';
        }}
    }}
}}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((LOCALHOST, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOCALHOST}:{port} after {timeout:.0f}s")


def service_available(module: str) -> bool:
    """Whether a taskq service's entry module is installed and importable."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Managed:
    """A child process in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.name = name
        self._log = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]


class FastTarget:
    """nginx answering a fixed 200 with keep-alive; the Python target when nginx is absent."""

    def __init__(self, workdir: Path, *, use_nginx: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://{LOCALHOST}:{self.port}/fast"
        nginx = find_nginx() if use_nginx else None
        root = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
        if nginx:
            config = root / "nginx.conf"
            config.write_text(NGINX_CONFIG.format(root=root, port=self.port))
            self.kind = "nginx"
            self.proc = Managed("nginx", [nginx, "-c", str(config), "-p", str(root)])
        else:
            self.kind = "python fallback"
            self.proc = Managed("fast-target", python_target_argv(self.port, 0))
        wait_for_port(self.port, timeout=10, process=self.proc.process)

    def stop(self) -> None:
        self.proc.stop()


def find_nginx() -> str | None:
    """nginx on PATH or where Debian puts it (/usr/sbin is not on every PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)


def python_target_argv(port: int, delay_ms: float) -> list[str]:
    return [sys.executable, "-m", "bench.target", "--port", str(port), "--delay-ms", str(delay_ms)]


@dataclass(frozen=True, slots=True)
class TargetStats:
    """What the counting target saw since its last reset (times are Unix seconds)."""

    count: int
    failures: int
    peak_in_flight: int
    arrivals: list[float]
    latencies: list[float]


@dataclass(frozen=True, slots=True)
class TargetSummary:
    count: int
    first: float | None
    latencies: int


class CountingTarget:
    """The async Python target (bench.target) in its own process: delays, fails, counts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://{LOCALHOST}:{self.port}"
        self.url = f"{self.base}/call"
        self.proc = Managed("counting-target", python_target_argv(self.port, 0))
        wait_for_port(self.port, timeout=10, process=self.proc.process)
        self._session = requests.Session()
        self._session.trust_env = False

    def reset(self, *, delay_ms: float = 0, fail_pct: int = 0) -> None:
        reply = self._session.post(
            f"{self.base}/_reset", json={"delay_ms": delay_ms, "fail_pct": fail_pct}, timeout=10
        )
        reply.raise_for_status()

    def stats(self) -> TargetStats:
        reply = self._session.get(f"{self.base}/_stats", timeout=30)
        reply.raise_for_status()
        data = reply.json()
        return TargetStats(
            count=int(data["count"]),
            failures=int(data["failures"]),
            peak_in_flight=int(data["peak_in_flight"]),
            arrivals=[float(x) for x in data["arrivals"]],
            latencies=[float(x) for x in data["latencies"]],
        )

    def summary(self) -> TargetSummary:
        reply = self._session.get(f"{self.base}/_summary", timeout=10)
        reply.raise_for_status()
        data = reply.json()
        first = data["first"]
        return TargetSummary(
            count=int(data["count"]),
            first=None if first is None else float(first),
            latencies=int(data["latencies"]),
        )

    def arrivals(self) -> list[float]:
        return self.stats().arrivals

    def stop(self) -> None:
        self._session.close()
        self.proc.stop()


class RssSampler:
    """Samples the resident memory of named process trees; keeps the peak of each."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._watched: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def watch(self, label: str, pid: int) -> None:
        with self._lock:
            self._watched[label] = pid

    def unwatch(self, label: str) -> None:
        with self._lock:
            self._watched.pop(label, None)

    def peak_mb(self, label: str) -> float | None:
        with self._lock:
            peak = self.peaks.get(label)
        return None if peak is None else peak / 1024 / 1024

    def reset(self, label: str) -> None:
        with self._lock:
            self.peaks.pop(label, None)

    def _sample(self, pid: int) -> int:
        total = 0
        for process in process_tree(pid):
            with contextlib.suppress(psutil.Error):
                total += int(process.memory_info().rss)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                watched = dict(self._watched)
            for label, pid in watched.items():
                rss = self._sample(pid)
                with self._lock:
                    if rss > self.peaks.get(label, 0):
                        self.peaks[label] = rss

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def process_tree(pid: int) -> list[psutil.Process]:
    """`pid` and all its descendants (granian forks its workers); empty once it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for process in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class CpuMeter:
    """CPU used by some process trees, by PostgreSQL and by the whole machine over an interval.

    PostgreSQL's share is that of the backends of the database of `dsn` (bench.pg_cpu):
    other databases' clients on the same server are not counted. A context manager:
    leaving it stops the sampling of the backends.
    """

    def __init__(self, pids: list[int], *, dsn: str, target: int | None = None) -> None:
        self._pids = pids
        self._target = target  # the HTTP target's process tree, when it is ours to measure
        self._wall = time.monotonic()
        self._trees = sum(_tree_cpu_seconds(pid) for pid in pids)
        self._target_cpu = _tree_cpu_seconds(target) if target is not None else 0.0
        self._postgres = DatabaseCpu(dsn, server_dsn())
        machine = psutil.cpu_times()
        self._machine_busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)

    def __enter__(self) -> CpuMeter:
        return self

    def __exit__(self, *_: object) -> None:
        self._postgres.close()

    def shares(self) -> dict[str, float]:
        """Cores used (1.0 = one core busy) by the trees, by PostgreSQL, by everything."""
        wall = max(time.monotonic() - self._wall, 1e-6)
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return {
            "watched_cores": (sum(_tree_cpu_seconds(pid) for pid in self._pids) - self._trees)
            / wall,
            "postgres_cores": self._postgres.seconds() / wall,
            "machine_cores": (busy - self._machine_busy) / wall,
            "wall_seconds": wall,
            "target_cores": (
                (_tree_cpu_seconds(self._target) - self._target_cpu) / wall
                if self._target is not None
                else 0.0
            ),
        }
