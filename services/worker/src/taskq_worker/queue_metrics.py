"""Exports the queue state (what an autoscaler and an alert read) from one worker replica.

A background thread reads a snapshot while this replica holds the exporter
lock; scrapes read the snapshot and never touch the database. Replicas without
the lock export nothing, so sums stay right. The snapshot is read when a
scrape finds it older than REFRESH_SECONDS (the scrape waits at most
SCRAPE_WAIT_SECONDS for it), not on a timer: an unscraped replica then reads
nothing, where refreshing 1,000 types every 5 s cost ~0.15% of a core, and a
replica scraped every 15 s reads once per scrape rather than three times.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from taskq_core.errors import DatabaseError, DatabaseUnavailableError
from taskq_core.repository.observability import (
    HostCircuitStats,
    QueueSnapshot,
    QueueStatsReader,
)

REFRESH_SECONDS = 5.0  # a snapshot younger than this is served as it is
SCRAPE_WAIT_SECONDS = 2.0  # how long a scrape waits for a fresh one before serving the last
STOP_CHECK_SECONDS = 5.0  # how often the idle thread looks at the stop event (no query)


class QueueStateCollector(Collector):
    def __init__(self, reader: QueueStatsReader, stop: threading.Event) -> None:
        self._reader = reader
        self._stop = stop
        self._snapshot: QueueSnapshot | None = None
        self._read_at = -math.inf  # time.monotonic() of the last read, failed or not
        self._wanted = threading.Event()  # a scrape asks for a fresh snapshot
        self._read = threading.Condition()  # notified after each read
        self._failing: str | None = None  # the error the last read failed with, logged once

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._wanted.wait(STOP_CHECK_SECONDS):
                    continue
                self._wanted.clear()
                snapshot = self._read_snapshot()
                with self._read:
                    self._snapshot, self._read_at = snapshot, time.monotonic()
                    self._read.notify_all()
        finally:
            self._reader.close()  # gives the exporter lock up to another replica

    def _read_snapshot(self) -> QueueSnapshot | None:
        """A new snapshot, or None (nothing exported) when it cannot be read now.

        Another database error (one queue's table gone, say) is logged when it
        first appears rather than raised: a scrape asks for the snapshot at
        once, and one task type's fault must not restart this thread and make
        the replica unready (as the fetcher sets such a type aside).
        """
        try:
            snapshot = self._reader.snapshot()
        except DatabaseUnavailableError as error:
            logger.debug("queue state not refreshed: {}", error)
            return None
        except DatabaseError as error:
            if error.message != self._failing:
                logger.warning("queue state not exported: {}", error.message)
            self._failing = error.message
            return None
        self._failing = None
        return snapshot

    def _fresh_snapshot(self) -> QueueSnapshot | None:
        """The snapshot, read again first (waiting up to SCRAPE_WAIT_SECONDS) when it is old."""
        with self._read:
            if time.monotonic() - self._read_at > REFRESH_SECONDS:
                asked_at = time.monotonic()
                self._wanted.set()
                self._read.wait_for(lambda: self._read_at >= asked_at, timeout=SCRAPE_WAIT_SECONDS)
            return self._snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snapshot = self._fresh_snapshot()
        if snapshot is None:
            return
        depth = GaugeMetricFamily(
            "taskq_queue_messages", "Messages in a task type's queue.", labels=["task_type"]
        )
        visible = GaugeMetricFamily(
            "taskq_queue_visible_messages",
            "Messages ready to be delivered now (what autoscaling reads).",
            labels=["task_type"],
        )
        oldest = GaugeMetricFamily(
            "taskq_queue_oldest_message_age_seconds",
            "Age of the oldest message in a task type's queue.",
            labels=["task_type"],
        )
        retrying = GaugeMetricFamily(
            "taskq_queue_retrying_messages",
            "Messages waiting for a retry after a failed attempt.",
            labels=["task_type"],
        )
        max_rps = GaugeMetricFamily(
            "taskq_task_type_max_rps",
            "Configured global rate limit of a task type (absent when unlimited); "
            "delivered rate / this = rate-limit saturation.",
            labels=["task_type"],
        )
        allowed = GaugeMetricFamily(
            "taskq_task_type_allowed_rps",
            "Rate a rate-limited task type is sent at now, across every replica: max_rps, "
            "or lower while a target's rate-limit headers or the adaptive rate hold it down.",
            labels=["task_type"],
        )
        paused = GaugeMetricFamily(
            "taskq_task_type_paused",
            "1 while a task type is paused (POST /task-types/{t}/pause): its backlog waits.",
            labels=["task_type"],
        )
        for stats in snapshot.queues:
            paused.add_metric([stats.task_type], 1.0 if stats.paused else 0.0)
            if stats.max_rps is not None:
                max_rps.add_metric([stats.task_type], stats.max_rps)
            if stats.allowed_rps is not None:
                allowed.add_metric([stats.task_type], stats.allowed_rps)
            depth.add_metric([stats.task_type], stats.queue_length)
            visible.add_metric([stats.task_type], stats.queue_visible_length)
            oldest.add_metric([stats.task_type], stats.oldest_age_seconds)
            retrying.add_metric([stats.task_type], stats.retrying)
        yield from (depth, visible, oldest, retrying, max_rps, allowed, paused)
        yield GaugeMetricFamily(
            "taskq_dlq_messages",
            "Messages in the dead-letter queue.",
            value=snapshot.dlq.queue_length,
        )
        yield GaugeMetricFamily(
            "taskq_dlq_oldest_message_age_seconds",
            "Age of the oldest message in the dead-letter queue.",
            value=snapshot.dlq.oldest_age_seconds,
        )

        yield from _host_circuits(snapshot.hosts)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # dynamic: nothing to check at registration


_CIRCUIT_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


def _host_circuits(
    hosts: list[HostCircuitStats],
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """One series per host (host:port): at most 100, those not closed or called in the last hour."""
    state = GaugeMetricFamily(
        "taskq_host_circuit_state",
        "A target host's circuit breaker: 0 closed, 1 half-open (probing), 2 open (calls wait).",
        labels=["host"],
    )
    opened = CounterMetricFamily(
        "taskq_host_circuit_opened",
        "Times a target host's circuit breaker opened.",
        labels=["host"],
    )
    for host in hosts:
        state.add_metric([host.host], _CIRCUIT_VALUES.get(host.state, 0.0))
        opened.add_metric([host.host], float(host.times_opened))
    yield state
    yield opened
