"""What an idle worker no longer wakes up for, and that it still reacts at once.

An idle replica's CPU (issue 13: at most 1% of a core) went to threads waking
on timers to find nothing to do; these threads now block on the event that
matters to them. These tests check the event still arrives on time.
"""

from __future__ import annotations

import threading
import time

from taskq_core.repository.observability import QueueStatsReader
from taskq_core.settings import Settings
from taskq_worker.health import DatabaseHealth
from taskq_worker.listener import Listener
from taskq_worker.queue_metrics import QueueStateCollector
from taskq_worker.wakeups import Wakeups
from tests.support import faults
from tests.support.target import wait_until


def test_the_queue_state_is_read_when_scraped_and_not_otherwise(settings: Settings) -> None:
    stop = threading.Event()
    collector = QueueStateCollector(QueueStatsReader(settings), stop)
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    try:
        # Not a wait for work: nobody scrapes, and the reader must not even connect.
        threading.Event().wait(0.5)
        assert not faults.connected(settings.postgres_dsn, "taskq-queue-stats")
        started = time.monotonic()
        names = {family.name for family in collector.collect()}
        # The scrape got a snapshot read for it, not an empty answer.
        assert "taskq_dlq_messages" in names
        assert time.monotonic() - started < 2.5
        assert faults.connected(settings.postgres_dsn, "taskq-queue-stats")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_listener_wakes_on_a_notification_and_stops_when_interrupted(
    settings: Settings,
) -> None:
    stop = threading.Event()
    wakeups = Wakeups()
    listener = Listener(settings, wakeups, DatabaseHealth(), stop)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: faults.connected(settings.postgres_dsn, "taskq-listener"))
        wait_until(lambda: wakeups.take().everything)  # (re)connected: look at every queue
        faults.run(settings.postgres_dsn, "fault_notify_work", {"queue": "tq_idle_probe"})
        wait_until(lambda: "tq_idle_probe" in wakeups.take().queues, timeout=2)
    finally:
        stop.set()
        listener.interrupt()
        started = time.monotonic()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
