"""Exports the queue state (what an autoscaler and an alert read) from one worker replica.

A background thread refreshes a snapshot every few seconds while this replica
holds the exporter lock; scrapes read the snapshot and never touch the
database. Replicas without the lock export nothing, so sums stay right.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from taskq_core.errors import DatabaseUnavailableError
from taskq_core.repository.observability import (
    HostCircuitStats,
    QueueSnapshot,
    QueueStatsReader,
)

REFRESH_SECONDS = 5.0


class QueueStateCollector(Collector):
    def __init__(self, reader: QueueStatsReader, stop: threading.Event) -> None:
        self._reader = reader
        self._stop = stop
        self._snapshot: QueueSnapshot | None = None

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._snapshot = self._reader.snapshot()
            except DatabaseUnavailableError as error:
                self._snapshot = None
                logger.debug("queue state not refreshed: {}", error)
            self._stop.wait(REFRESH_SECONDS)
        self._reader.close()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snapshot = self._snapshot
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
