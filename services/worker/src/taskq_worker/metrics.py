"""The worker's Prometheus metrics, on a registry of its own (no module-level state).

Labels are bounded: task_type and outcome/status class only, never ids or URLs.
With WORKER_PROCESSES > 1 every child writes them to prometheus-client's
multiprocess files and the replica's main process serves the sum; the gauges
then say how children combine (live*: a dead child's values are dropped).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from taskq_core.deliveries import Dropped, Failed, Outcome, RetryLater, Snoozed, Succeeded
from taskq_core.repository.retention import Deleted

_SuccessSeries = tuple[Counter, Histogram, Histogram]
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WorkerMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, multiprocess: bool = False
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self._multiprocess = multiprocess
        self._watched: list[tuple[Gauge, Callable[[], float]]] = []
        self._successes: dict[tuple[str, int], _SuccessSeries] = {}
        self.deliveries = Counter(
            "taskq_worker_deliveries",
            "Messages handled, by task type and outcome (success; retry; snoozed: the target "
            "answered 429 or 503 with Retry-After, no attempt spent; circuit_open: not called, "
            "the host's circuit breaker is open, no attempt spent; failed: moved to the "
            "DLQ; dropped: a duplicate of an already final message; expired: waited too "
            "long for a thread and left to reappear uncalled; late: missed its rate token's "
            "slot and returned to the queue uncalled, no attempt spent).",
            ["task_type", "outcome"],
            registry=self.registry,
        )
        self.call_duration = Histogram(
            "taskq_worker_call_duration_seconds",
            "Duration of outbound HTTP calls, by task type and status class.",
            ["task_type", "status_class"],
            buckets=_CALL_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Histogram(
            "taskq_worker_attempts_per_message",
            "Attempts a message took when it finished (success or failed).",
            ["task_type"],
            buckets=(1, 2, 3, 4, 5, 7, 10, 20),
            registry=self.registry,
        )
        self.callbacks = Counter(
            "taskq_worker_callbacks",
            "Attempts to call a batch's callback_url or failure_callback_url, by the task "
            "type of the message reported on and outcome (success; retry; snoozed; failed: "
            "given up, recorded in the message's status, never dead-lettered; dropped: "
            "superseded or already final). Never changes the message's own status.",
            ["task_type", "outcome"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "taskq_worker_dead_lettered",
            "Messages moved to the DLQ, by task type and reason (exhausted: out of retries; "
            "rate_limited: out of snoozes (MAX_SNOOZES); permanent: an answer or error "
            "that retrying cannot fix).",
            ["task_type", "reason"],
            registry=self.registry,
        )
        self.fetched_messages = Counter(
            "taskq_worker_fetched_messages",
            "Messages read from the queue, by task type.",
            ["task_type"],
            registry=self.registry,
        )
        self.rate_limit_wait = Counter(
            "taskq_worker_rate_limit_wait_seconds",
            "Seconds a task type waited for its next rate token.",
            ["task_type"],
            registry=self.registry,
        )
        self.rate_limit_hits = Counter(
            "taskq_worker_rate_limited",
            "Times a task type found its rate bucket empty.",
            ["task_type"],
            registry=self.registry,
        )
        self.snooze_seconds = Counter(
            "taskq_worker_snooze_seconds",
            "Seconds a task type was paused because its target asked for time (429, or "
            "503 with Retry-After), as this replica asked for them.",
            ["task_type"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "taskq_worker_in_flight_calls",
            "Calls being made right now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.buffered = Gauge(
            "taskq_worker_buffered_messages",
            "Messages read and waiting for a thread.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.threads = Gauge(
            "taskq_worker_threads",
            "Executor threads (MAX_WORKERS in each worker process).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.concurrency_limit = Gauge(
            "taskq_worker_concurrency_limit",
            "Calls of fast task types allowed at once, as the concurrency tuner set it.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.thread_restarts = Counter(
            "taskq_worker_thread_restarts",
            "Times a worker thread failed unexpectedly and was restarted, by thread.",
            ["thread"],
            registry=self.registry,
        )
        self.task_type_errors = Counter(
            "taskq_worker_task_type_errors",
            "Reads of a task type's queue that failed for that type alone (its queue "
            "dropped, renamed or unreadable); the type is set aside with backoff.",
            ["task_type"],
            registry=self.registry,
        )
        self.task_type_set_aside = Gauge(
            "taskq_worker_task_type_set_aside",
            "1 while a task type is set aside because reading its queue fails.",
            ["task_type"],
            registry=self.registry,
        )
        self.database_up = Gauge(
            "taskq_worker_database_up",
            "1 when the worker's last database call succeeded.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )

        # What this process's probes would answer, so that a replica's main process
        # can answer for all its worker processes (1 = ok; the lowest counts).
        self.ready = Gauge(
            "taskq_worker_ready",
            "1 when the worker process is ready (database reachable, every thread running).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.live = Gauge(
            "taskq_worker_live",
            "1 unless the fetcher or recorder made no progress for LIVENESS_TIMEOUT.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )

        self.retention_deleted = Counter(
            "taskq_retention_deleted_rows",
            "Rows the retention job deleted, by kind (status: status rows of finished "
            "messages; task: tasks whose last status row went; dead_letter: DLQ messages).",
            ["kind"],
            registry=self.registry,
        )

    def watch(
        self,
        *,
        in_flight: Callable[[], float],
        buffered: Callable[[], float],
        concurrency_limit: Callable[[], float],
        database_up: Callable[[], float],
        ready: Callable[[], float],
        live: Callable[[], float],
        threads: int,
    ) -> None:
        """Gauges read at scrape time, so the hot path pays nothing for them.

        A child process cannot be read at scrape time: it copies them into its
        multiprocess files whenever `publish` is called.
        """
        self.threads.set(threads)
        self._watched = [
            (self.in_flight, in_flight),
            (self.buffered, buffered),
            (self.concurrency_limit, concurrency_limit),
            (self.database_up, database_up),
            (self.ready, ready),
            (self.live, live),
        ]
        if not self._multiprocess:
            for gauge, read in self._watched:
                gauge.set_function(read)

    def publish(self) -> None:
        """Copy the watched gauges' current values into the multiprocess files."""
        for gauge, read in self._watched:
            gauge.set(read())

    def fetched(self, task_type: str, count: int) -> None:
        self.fetched_messages.labels(task_type).inc(count)

    def rate_limited(self, task_type: str, wait_seconds: float) -> None:
        self.rate_limit_hits.labels(task_type).inc()
        self.rate_limit_wait.labels(task_type).inc(max(wait_seconds, 0.0))

    def set_aside(self, task_type: str, *, aside: bool) -> None:
        """A task type's queue failed (aside) or is readable again."""
        if aside:
            self.task_type_errors.labels(task_type).inc()
        self.task_type_set_aside.labels(task_type).set(1.0 if aside else 0.0)

    def retained(self, deleted: Deleted) -> None:
        """Count what one retention batch deleted."""
        for kind, count in (
            ("status", deleted.statuses),
            ("task", deleted.tasks),
            ("dead_letter", deleted.dead_letters),
        ):
            if count:
                self.retention_deleted.labels(kind).inc(count)

    def expired(self, task_type: str) -> None:
        """A buffered message left uncalled because it waited past its safe start."""
        self.deliveries.labels(task_type, "expired").inc()

    def late(self, task_type: str) -> None:
        """A buffered message of a rate-limited type returned uncalled: its token's slot passed."""
        self.deliveries.labels(task_type, "late").inc()

    def observe(self, outcome: Outcome) -> None:
        task_type = outcome.delivery.task_type
        call = outcome.delivery.call
        if call is not None and call.callback_of is not None:
            self._callback(call.callback_of, outcome)
            return
        match outcome:
            case Succeeded():
                success = self._successes.get((task_type, outcome.http_status))
                if success is None:
                    success = self._success_series(task_type, outcome.http_status)
                deliveries, duration, attempts = success
                deliveries.inc()
                duration.observe(outcome.duration_ms / 1000.0)
                attempts.observe(outcome.delivery.attempt + 1)
            case RetryLater():
                self.deliveries.labels(task_type, "retry").inc()
                self._call(task_type, outcome.http_status, outcome.duration_ms)
            case Snoozed(circuit_open=True):  # no call made: the host's breaker is open
                self.deliveries.labels(task_type, "circuit_open").inc()
            case Snoozed():
                self.deliveries.labels(task_type, "snoozed").inc()
                self.snooze_seconds.labels(task_type).inc(outcome.delay)
                self._call(task_type, outcome.http_status, outcome.duration_ms)
            case Failed():
                # Every failed message goes to the DLQ: `failed` counts calls,
                # taskq_worker_dead_lettered_total says why the message was parked.
                self.deliveries.labels(task_type, "failed").inc()
                reason = (
                    "rate_limited"
                    if outcome.rate_limited
                    else "exhausted"
                    if outcome.exhausted
                    else "permanent"
                )
                self.dead_lettered.labels(task_type, reason).inc()
                self._call(task_type, outcome.http_status, outcome.duration_ms)
                self.attempts.labels(task_type).observe(outcome.delivery.attempt + 1)
            case Dropped():
                self.deliveries.labels(task_type, "dropped").inc()

    def _callback(self, task_type: str, outcome: Outcome) -> None:
        """A callback's attempt, under the type of the message it reports on."""
        match outcome:
            case Succeeded():
                result = "success"
            case RetryLater():
                result = "retry"
            case Snoozed():
                result = "snoozed"
            case Failed():
                result = "failed"
            case Dropped():
                result = "dropped"
        self.callbacks.labels(task_type, result).inc()
        if not isinstance(outcome, Dropped):
            self._call(outcome.delivery.task_type, outcome.http_status, outcome.duration_ms)

    def _success_series(self, task_type: str, http_status: int) -> _SuccessSeries:
        """The labelled series a success updates, looked up once per type and status.

        Finding a labelled child takes a lock and a dict lookup per metric;
        doing it three times per call was ~3% of a worker's CPU (py-spy).
        """
        series = (
            self.deliveries.labels(task_type, "success"),
            self.call_duration.labels(task_type, f"{http_status // 100}xx"),
            self.attempts.labels(task_type),
        )
        self._successes[(task_type, http_status)] = series
        return series

    def _call(self, task_type: str, http_status: int | None, duration_ms: float) -> None:
        status_class = f"{http_status // 100}xx" if http_status else "error"
        self.call_duration.labels(task_type, status_class).observe(duration_ms / 1000.0)
