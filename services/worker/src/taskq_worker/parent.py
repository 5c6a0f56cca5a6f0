"""The main process of a replica with WORKER_PROCESSES > 1: starts, watches and stops its children.

One process is bound by the GIL near what one `requests` loop does on one core
(design decision 9), so a replica runs processes x threads, as Dramatiq,
Celery and granian do. This process makes no calls itself: it restarts a child
that dies (with backoff; too many deaths in a row end the replica with a
non-zero status, so the orchestrator sees it), passes SIGTERM on so each child
drains as a single-process worker does, and serves one metrics and health port
for all of them (prometheus-client multiprocess files) plus the queue state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from loguru import logger
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from taskq_core.database import connect
from taskq_core.errors import DatabaseUnavailableError, SchemaMismatchError
from taskq_core.repository.observability import QueueStatsReader
from taskq_core.schema_version import check_database
from taskq_core.settings import Settings
from taskq_worker.affinity import STARTING_CPU_VARIABLE, starting_cpus
from taskq_worker.child import PARENT_VARIABLE, SCHEMA_UNFIT_STATUS
from taskq_worker.cpus import allowed_cpus
from taskq_worker.endpoints import serve_endpoints
from taskq_worker.queue_metrics import QueueStateCollector

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CHILD_MODULE = "taskq_worker.child"
# A thread per child waits for its exit and wakes the watch at once; this is
# only a safety net (a wake-up every 0.5 s was ~0.02% of a core, idle).
WATCH_SECONDS = 30.0
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
# A child that dies this often within the window is not going to recover by
# being restarted (bad settings, a bug on start-up): give up and exit non-zero.
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 60.0
STOP_MARGIN_SECONDS = 5.0  # beyond the grace period, for a child to flush and exit


@dataclass(slots=True)
class _Slot:
    """One child position: the process running in it, or when to start the next one."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    restart_at: float = 0.0
    failures: deque[float] = field(default_factory=deque)  # monotonic times of recent deaths


class ProcessSupervisor:
    def __init__(self, settings: Settings, processes: int) -> None:
        self._settings = settings
        self._slots = [_Slot(index) for index in range(processes)]
        # Children starting together begin on distinct CPUs (taskq_worker.affinity).
        pinning = settings.worker_cpu_affinity == "auto"
        self._cpus = starting_cpus(processes, allowed_cpus()) if pinning else None
        self._stop = threading.Event()
        self._changed = threading.Event()  # a child exited or a stop was asked for
        self._signals = 0
        self._restarts = 0
        self._metrics_dir = Path(tempfile.mkdtemp(prefix="taskq-worker-metrics-"))
        self._registry = CollectorRegistry()
        self._children_metrics = multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            self._registry, path=str(self._metrics_dir)
        )
        self._registry.register(_RestartsCollector(lambda: self._restarts))
        self._queue_state = QueueStateCollector(
            QueueStatsReader(settings),
            self._stop,
        )
        self._queue_state.register(self._registry)

    def run(self) -> int:
        """Run the children until SIGTERM/SIGINT, then stop them; the replica's exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if not self._schema_fits():
            return 1
        endpoints = serve_endpoints(
            self._settings.host,
            self._settings.metrics_port,
            self._registry,
            not_ready=self._not_ready,
            not_live=self._not_live,
        )
        threading.Thread(target=self._queue_state.run, name="queue-state", daemon=True).start()
        logger.info(
            "worker replica started: {} processes x {} threads",
            len(self._slots),
            self._settings.max_workers,
        )
        try:
            healthy = self._watch()
            status = self._stop_children()
        finally:
            endpoints.shutdown()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
        return status if healthy else 1

    def _watch(self) -> bool:
        """Keep every slot running until asked to stop; False when a child keeps dying."""
        while not self._stop.is_set():
            self._changed.clear()  # before looking, so a change while looking is not lost
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is None:
                    if now >= slot.restart_at:
                        self._start(slot)
                elif (status := slot.process.poll()) is not None and not self._child_died(
                    slot, status, now
                ):
                    return False
            restarts = [slot.restart_at for slot in self._slots if slot.process is None]
            wait = min([at - time.monotonic() for at in restarts], default=WATCH_SECONDS)
            self._changed.wait(min(max(wait, 0.0), WATCH_SECONDS))
        return True

    def _child_died(self, slot: _Slot, status: int, now: float) -> bool:
        """Schedule the restart of a dead child; False when it failed too often to retry."""
        assert slot.process is not None
        self._forget(slot.process)
        slot.process = None
        if status == SCHEMA_UNFIT_STATUS:
            return False  # it said why in its log; every restart would fail the same way
        while slot.failures and now - slot.failures[0] > FAILURE_WINDOW_SECONDS:
            slot.failures.popleft()
        slot.failures.append(now)
        if len(slot.failures) >= MAX_FAILURES:
            logger.error(
                "worker process {} exited (status {}) {} times within {:.0f} s: stopping the "
                "replica",
                slot.index,
                status,
                len(slot.failures),
                FAILURE_WINDOW_SECONDS,
            )
            return False
        delay = min(FIRST_RESTART_DELAY * 2 ** (len(slot.failures) - 1), MAX_RESTART_DELAY)
        logger.warning(
            "worker process {} exited unexpectedly (status {}); restarting in {:.1f} s "
            "(its unfinished messages reappear after the visibility timeout)",
            slot.index,
            status,
            delay,
        )
        slot.restart_at = now + delay
        self._restarts += 1
        return True

    def _start(self, slot: _Slot) -> None:
        env = {
            **os.environ,
            MULTIPROC_VARIABLE: str(self._metrics_dir),
            PARENT_VARIABLE: str(os.getpid()),
            # The count, not `auto`: a child shares per-replica work (the due poll) by it.
            "WORKER_PROCESSES": str(len(self._slots)),
        }
        if self._cpus is not None:
            env[STARTING_CPU_VARIABLE] = str(self._cpus[slot.index])
        # Its own session: a terminal's Ctrl-C reaches only this process, which
        # passes one SIGTERM on (a child seeing two signals would exit at once).
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", CHILD_MODULE], env=env, start_new_session=True
        )
        slot.process = process
        threading.Thread(
            target=self._await_exit, args=(process,), name=f"await-{process.pid}", daemon=True
        ).start()
        logger.debug("worker process {} started (pid {})", slot.index, process.pid)

    def _await_exit(self, process: subprocess.Popen[bytes]) -> None:
        """Wake the watch as soon as `process` exits (blocked in waitpid meanwhile: no CPU)."""
        process.wait()
        self._changed.set()

    def _stop_children(self) -> int:
        """SIGTERM every child, wait for them to drain; 0 when all exited cleanly."""
        running = [slot.process for slot in self._slots if slot.process is not None]
        for process in running:
            _send(process, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.shutdown_grace_period + STOP_MARGIN_SECONDS
        status = 0
        for process in running:
            try:
                code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.warning("worker process {} did not stop in time: killing it", process.pid)
                process.kill()
                code = process.wait()
            self._forget(process)
            # Killed by our SIGTERM before it had installed its handlers: it was
            # still starting and had nothing to drain.
            clean = code in (0, -signal.SIGTERM)
            status = status or (0 if clean else 1)
        logger.info("worker replica stopped")
        return status

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            logger.info("{} received: stopping every worker process", name)
            self._stop.set()
            self._changed.set()
            return
        logger.warning("second {} received: the worker processes exit now", name)
        for slot in self._slots:
            if slot.process is not None:
                _send(slot.process, signal.SIGTERM)  # their second signal: exit at once

    def _schema_fits(self) -> bool:
        """Checked once here, so an unfit schema is one line and no children (they check too)."""
        try:
            with connect(self._settings, name="taskq-worker-parent") as conn:
                check_database(conn)
        except SchemaMismatchError as error:
            logger.error("{}", error)
            return False
        except DatabaseUnavailableError as error:
            logger.warning("schema not checked yet, the database is unavailable: {}", error)
        return True

    def _not_ready(self) -> str | None:
        """Why the replica is not ready: a child down, or a child's own probe failing."""
        if any(slot.process is None or slot.process.poll() is not None for slot in self._slots):
            return "a worker process is not running"
        ready = self._lowest("taskq_worker_ready")
        if ready is None:
            return "worker processes starting"
        return None if ready >= 1 else "a worker process is not ready"

    def _not_live(self) -> str | None:
        """Why the replica should be restarted: a child whose fetcher or recorder is stuck."""
        live = self._lowest("taskq_worker_live")
        return "a worker process made no progress" if live is not None and live < 1 else None

    def _lowest(self, name: str) -> float | None:
        """The lowest value the live children published for a gauge, or None before any did."""
        for family in self._children_metrics.collect():  # type: ignore[no-untyped-call]
            if family.name == name and family.samples:
                return min(float(sample.value) for sample in family.samples)
        return None

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        """Drop a dead child's live gauges (its counters keep counting in the sums)."""
        multiprocess.mark_process_dead(process.pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]


class _RestartsCollector(Collector):
    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "taskq_worker_process_restarts",
            "Worker processes of this replica restarted after dying unexpectedly.",
            value=self._read(),
        )


def _send(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        process.send_signal(sig)
