"""One start/stop contract for every long-lived thread of the worker: none may stop silently.

A supervised thread that raises is logged once with its traceback, counted in
`taskq_worker_thread_restarts_total{thread}` and started again after a backoff;
readiness is false meanwhile. A thread that fails `restart_limit` times within
`restart_window` seconds gives up: `failed` is set and the process exits
non-zero, so the orchestrator restarts it (what was in flight reappears through
the visibility timeout, as after SIGKILL). Modelled on River's startstop
services and procrastinate's `_monitor_side_tasks`. Adding a thread is one
`supervision.start(name, target)` call.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from prometheus_client import Counter

from taskq_core.errors import SchemaMismatchError

RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 10.0
# A restarted thread counts as up once it has run this long without failing
# again: one that fails at once would otherwise look ready between attempts.
SETTLE_SECONDS = 2.0
_NUMBERED = re.compile(r"-\d+$")


@dataclass(slots=True)
class _Watched:
    name: str
    restarting: bool = False
    restarted_at: float = -SETTLE_SECONDS
    failures: deque[float] = field(default_factory=deque)  # time.monotonic() of each failure
    beat_at: float | None = None  # last heartbeat, for threads that report progress


class Supervision:
    def __init__(
        self,
        *,
        stop: threading.Event,
        restarts: Counter,
        restart_limit: int,
        restart_window: float,
        liveness_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop = stop
        self._restarts = restarts
        self._restart_limit = restart_limit
        self._restart_window = restart_window
        self._liveness_timeout = liveness_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}
        self.failed = threading.Event()  # a thread gave up: the process must exit non-zero
        self.schema_unfit = threading.Event()  # why it gave up: restarting the process won't help

    def start(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Run `target` in a daemon thread named `name`, restarting it when it raises."""
        with self._lock:
            self._watched.setdefault(name, _Watched(name))
        thread = threading.Thread(target=self._run, args=(name, target), name=name, daemon=True)
        thread.start()
        return thread

    def heartbeat(self, name: str) -> Callable[[], None]:
        """A function the thread `name` calls on every turn of its loop (the liveness watchdog)."""
        with self._lock:
            watched = self._watched.setdefault(name, _Watched(name))

        def beat() -> None:
            watched.beat_at = self._clock()

        beat()
        return beat

    def not_ready(self) -> list[str]:
        """Names of the threads being restarted (or given up on)."""
        now = self._clock()
        with self._lock:
            return [
                name
                for name, watched in self._watched.items()
                if watched.restarting or now - watched.restarted_at < SETTLE_SECONDS
            ]

    def stalled(self) -> list[str]:
        """Names of the heartbeat threads that made no progress for the liveness timeout."""
        now = self._clock()
        return [
            watched.name
            for watched in list(self._watched.values())
            if watched.beat_at is not None
            and not watched.restarting
            and now - watched.beat_at > self._liveness_timeout
        ]

    def _run(self, name: str, target: Callable[[], None]) -> None:
        watched = self._watched[name]
        while True:
            try:
                target()
            except SchemaMismatchError as error:
                # Restarting cannot help: the database must be migrated (or the code rolled).
                logger.error("{}", error)
                self.schema_unfit.set()
                self._give_up(watched)
                return
            except Exception:
                logger.opt(exception=True).error("thread {} failed", name)
            else:
                if self._stop.is_set():
                    return  # the normal end of a thread: the process is stopping
                logger.error("thread {} ended unexpectedly", name)
            if self._stop.is_set():
                return
            failures = self._count_failure(watched)
            if failures >= self._restart_limit:
                logger.error(
                    "thread {} failed {} times within {:g} s: exiting so the process is restarted",
                    name,
                    self._restart_limit,
                    self._restart_window,
                )
                self._give_up(watched)
                return
            # Doubles with each failure in the window; a thread that ran well for
            # the window long starts again from the first delay.
            delay = min(RESTART_FIRST_DELAY * 2 ** (failures - 1), RESTART_MAX_DELAY)
            logger.info("restarting thread {} in {:.1f} s", name, delay)
            if self._stop.wait(delay):
                return
            with self._lock:
                watched.restarting = False
                watched.restarted_at = self._clock()
            if watched.beat_at is not None:
                watched.beat_at = self._clock()

    def _count_failure(self, watched: _Watched) -> int:
        """Note a failure; how many failures the thread had within the window."""
        # executor-0 .. executor-N share one label value: one series per kind of thread.
        self._restarts.labels(_NUMBERED.sub("", watched.name)).inc()
        now = self._clock()
        with self._lock:
            watched.restarting = True
            watched.failures.append(now)
            while watched.failures and now - watched.failures[0] > self._restart_window:
                watched.failures.popleft()
            return len(watched.failures)

    def _give_up(self, watched: _Watched) -> None:
        with self._lock:
            watched.restarting = True
        self.failed.set()
        self._stop.set()
