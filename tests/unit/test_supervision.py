"""The supervision helper: restart with backoff, count, give up, readiness and the watchdog."""

from __future__ import annotations

import io
import threading

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from taskq_core.errors import SchemaMismatchError
from taskq_core.logs import configure_logging
from taskq_core.settings import Settings
from taskq_worker.supervision import Supervision
from tests.support.target import wait_until


def _supervision(
    stop: threading.Event, *, limit: int = 5, window: float = 60.0, liveness: float = 60.0
) -> tuple[Supervision, Counter]:
    restarts = Counter("restarts", "test", ["thread"], registry=CollectorRegistry())
    supervision = Supervision(
        stop=stop,
        restarts=restarts,
        restart_limit=limit,
        restart_window=window,
        liveness_timeout=liveness,
    )
    return supervision, restarts


def test_a_failing_thread_is_restarted_counted_and_not_ready_meanwhile() -> None:
    stop = threading.Event()
    supervision, restarts = _supervision(stop)
    calls: list[int] = []
    healthy = threading.Event()

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("boom")
        healthy.set()
        stop.wait()

    supervision.start("executor-3", flaky)
    wait_until(lambda: supervision.not_ready() == ["executor-3"], timeout=5)
    wait_until(healthy.is_set, timeout=10)
    wait_until(lambda: supervision.not_ready() == [], timeout=5)
    # Numbered threads share one label value.
    assert restarts.labels("executor")._value.get() == 2
    assert not supervision.failed.is_set()
    stop.set()


def test_a_thread_failing_too_often_makes_the_process_give_up() -> None:
    stop = threading.Event()
    supervision, restarts = _supervision(stop, limit=3)

    def broken() -> None:
        raise RuntimeError("always")

    thread = supervision.start("fetcher", broken)
    wait_until(supervision.failed.is_set, timeout=10)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert stop.is_set(), "giving up stops the process"
    assert restarts.labels("fetcher")._value.get() == 3
    assert supervision.not_ready() == ["fetcher"]


def test_a_thread_ending_while_the_process_runs_counts_as_a_failure() -> None:
    stop = threading.Event()
    supervision, restarts = _supervision(stop, limit=2)
    thread = supervision.start("listener", lambda: None)
    wait_until(supervision.failed.is_set, timeout=10)
    thread.join(timeout=5)
    assert restarts.labels("listener")._value.get() == 2


def test_a_schema_mismatch_gives_up_at_once() -> None:
    stop = threading.Event()
    supervision, restarts = _supervision(stop)

    def mismatch() -> None:
        raise SchemaMismatchError("database schema is behind")

    supervision.start("listener", mismatch)
    wait_until(supervision.failed.is_set, timeout=5)
    assert restarts.labels("listener")._value.get() == 0


def test_a_thread_ending_at_stop_is_not_a_failure() -> None:
    stop = threading.Event()
    supervision, _ = _supervision(stop, limit=1)
    thread = supervision.start("recorder", stop.wait)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert not supervision.failed.is_set()


def test_the_watchdog_names_a_thread_whose_heartbeat_stopped() -> None:
    stop = threading.Event()
    supervision, _ = _supervision(stop, liveness=0.2)
    beat = supervision.heartbeat("fetcher")
    stuck = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            beat()
            if stuck.is_set():
                stop.wait()  # a deadlock, as far as the watchdog can tell
            stop.wait(0.01)

    supervision.start("fetcher", loop)
    assert supervision.stalled() == []
    stuck.set()
    wait_until(lambda: supervision.stalled() == ["fetcher"], timeout=5)
    stop.set()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failure_is_logged_with_its_frames_but_never_its_local_variables(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format=log_format), stream=stream)
    try:
        stop = threading.Event()
        supervision, _ = _supervision(stop, limit=1)

        def leaky() -> None:
            header_value = "Bearer planted-secret-123"
            raise RuntimeError(len(header_value))  # diagnose would print the variable

        thread = supervision.start("recorder", leaky)
        thread.join(timeout=5)
    finally:
        logger.remove()
    text = stream.getvalue()
    assert "thread recorder failed" in text
    assert "in leaky" in text, "the traceback names the failing function"
    assert "planted-secret-123" not in text
