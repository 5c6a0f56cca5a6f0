"""Owns the worker's threads, pool and shutdown.

Threads: one listener (LISTEN for new work), one fetcher (tokens, then reads),
MAX_WORKERS executors (the HTTP calls), one recorder (batched outcome writes),
one queue-state exporter; each runs under the supervision (restarted when it
fails, the process exits when one keeps failing). On stop: reading ends,
buffered-but-unstarted messages are made visible again at once, in-flight
calls get up to the grace period, outcomes are flushed.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from pathlib import Path

import requests
from loguru import logger

from taskq_core.call_limits import call_timeout, longest_call
from taskq_core.circuits import BreakerPolicy
from taskq_core.database import SyncPool, create_pool
from taskq_core.deliveries import Delivery, Failed, Outcome, outcome_for
from taskq_core.egress import EgressPolicy
from taskq_core.errors import DatabaseUnavailableError, SchemaMismatchError
from taskq_core.repository.circuits import CircuitRepository
from taskq_core.repository.observability import QueueStatsReader
from taskq_core.repository.retention import RetentionRepository
from taskq_core.repository.worker import WorkerRepository
from taskq_core.retry import ErrorKind, Happened
from taskq_core.secret_box import SecretBox
from taskq_core.settings import Settings
from taskq_worker.circuit_view import CircuitView
from taskq_worker.concurrency import ConcurrencyTuner
from taskq_worker.curl_transport import CurlAdapter
from taskq_worker.delivery import MAX_RESPONSE_BYTES, CallDefaults, NoCookies, deliver
from taskq_worker.dispatcher import Dispatcher
from taskq_worker.fetcher import Fetcher
from taskq_worker.guarded_http import guarded_adapter
from taskq_worker.health import DatabaseHealth
from taskq_worker.leases import LeaseBook
from taskq_worker.listener import Listener
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.outcome_log import log_outcome, message_context
from taskq_worker.proxies import environment_proxies
from taskq_worker.queue_metrics import QueueStateCollector
from taskq_worker.recorder import IDLE_WAKE_SECONDS, Recorder
from taskq_worker.redirects import TaskSession
from taskq_worker.retention import RetentionJob, RetentionPolicy
from taskq_worker.supervision import Supervision
from taskq_worker.wakeups import Wakeups

TAKE_TIMEOUT = 1.0  # an executor held back with work buffered looks again this often
# With nothing buffered an executor waits this long: put() and close() wake it
# at once, so this is only a safety net (10 threads waking every second were
# ~0.05% of a core per idle process).
IDLE_TAKE_TIMEOUT = 30.0
STALE_MARGIN = 1.0  # seconds kept between a call's latest end and its message reappearing


def make_session(threads: int, policy: EgressPolicy) -> requests.Session:
    """One session shared by the executors, its pool sized to them.

    trust_env is off because it costs about a third of each call (proxy and
    netrc lookups per request); proxies in the environment are read once here,
    and not at all when EGRESS_* settings ask for checks (a proxy resolves the
    name itself, hiding the address the policy must see).
    Cookies are neither kept nor sent: calls of unrelated tasks share it.
    """
    session = TaskSession()
    session.trust_env = False
    session.cookies = NoCookies()
    if not policy.configured:
        proxies, session.no_proxy = environment_proxies()
        session.proxies.update(proxies)
    fallback = guarded_adapter(policy, pool_maxsize=max(threads, 1))
    adapter = CurlAdapter(policy, fallback, max_body_bytes=MAX_RESPONSE_BYTES)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics | None = None,
        *,
        export_queue_state: bool = True,
    ) -> None:
        self._settings = settings
        self.stop_event = threading.Event()
        self._draining = threading.Event()
        self.metrics = metrics or WorkerMetrics()
        self.health = DatabaseHealth()
        self.supervision = Supervision(
            stop=self.stop_event,
            restarts=self.metrics.thread_restarts,
            restart_limit=settings.thread_restart_limit,
            restart_window=settings.thread_restart_window,
            liveness_timeout=settings.liveness_timeout,
        )
        # No per-checkout check: it costs a round trip on every read and write;
        # a broken connection fails its statement, which is retried anyway.
        self._pool = create_pool(
            settings, name="taskq-worker", max_size=max(2, min(settings.db_pool_size, 4))
        )
        self.repository = WorkerRepository(
            self._pool,
            dlq_queue_name=settings.dlq_queue_name,
            secrets=SecretBox(settings.secrets_key) if settings.secrets_key else None,
        )
        self.dispatcher = Dispatcher(
            threads=settings.max_workers,
            buffer_size=settings.read_ahead,
            tuner=ConcurrencyTuner(settings.max_workers) if settings.adaptive_concurrency else None,
        )
        self._wakeups = Wakeups()
        self.circuits = _circuit_view(settings, self._pool)
        self._recorder = Recorder(
            self.repository,
            self.health,
            self._wakeups,
            self.metrics,
            heartbeat=self.supervision.heartbeat("recorder"),
            circuits=self.circuits,
            idle_wake=min(IDLE_WAKE_SECONDS, settings.liveness_timeout / 4),
        )
        self._leases = LeaseBook()
        self._fetcher = Fetcher(
            self.repository,
            self.dispatcher,
            visibility_timeout=settings.visibility_timeout,
            call_timeout=settings.timeout,
            rate_slot_margin=settings.rate_slot_margin,
            wakeups=self._wakeups,
            health=self.health,
            metrics=self.metrics,
            stop=self.stop_event,
            heartbeat=self.supervision.heartbeat("fetcher"),
            processes=settings.worker_processes,  # a child is told the replica's count
            leases=self._leases,
        )
        self._listener = Listener(
            settings,
            self._wakeups,
            self.health,
            self.stop_event,
            on_connect=self.repository.check_schema,
        )
        self._defaults = CallDefaults.from_settings(settings)
        self._session = make_session(settings.max_workers, EgressPolicy.from_settings(settings))
        self._executors: list[threading.Thread] = []
        self._queue_state = QueueStateCollector(
            QueueStatsReader(settings),
            self.stop_event,
        )
        # Every process runs it; the holder of the retention lock is the one that deletes.
        self.retention = RetentionJob(
            RetentionRepository(settings),
            RetentionPolicy(settings.status_retention, settings.dlq_retention),
            self.metrics,
            self.stop_event,
        )
        self._export_queue_state = export_queue_state  # a child leaves it to its parent
        if export_queue_state:
            self._queue_state.register(self.metrics.registry)
        self.metrics.watch(
            in_flight=self.dispatcher.in_flight,
            buffered=self.dispatcher.buffered,
            concurrency_limit=self.dispatcher.limit,
            database_up=lambda: 1.0 if self.health.up else 0.0,
            ready=lambda: 1.0 if self.not_ready() is None else 0.0,
            live=lambda: 1.0 if self.not_live() is None else 0.0,
            threads=settings.max_workers,
        )

    def not_ready(self) -> str | None:
        """Why this worker should not count as ready, or None (what /health/ready answers)."""
        if not self.health.up:
            return "database unavailable"
        restarting = self.supervision.not_ready()
        if restarting:
            return f"thread down or restarting: {', '.join(restarting)}"
        return None

    def not_live(self) -> str | None:
        """Why the process should be restarted, or None (what /health/live answers)."""
        stalled = self.supervision.stalled()
        return f"no progress: {', '.join(stalled)}" if stalled else None

    def run(self) -> int:
        """Run until `stop_event` is set, then shut down gracefully; return the exit status.

        Non-zero when the schema does not fit this code or a thread kept failing.
        """
        self._pool.open(wait=False)
        try:
            self.repository.check_schema()
        except SchemaMismatchError as error:
            logger.error("{}", error)
            self.supervision.schema_unfit.set()
            self._pool.close(timeout=2.0)
            return 1
        except DatabaseUnavailableError as error:
            # The listener checks again as soon as it reaches the database.
            logger.warning("schema not checked yet, the database is unavailable: {}", error)
        start = self.supervision.start
        fetcher = start("fetcher", self._fetcher.run)
        start("listener", self._listener.run)
        if self._export_queue_state:
            start("queue-state", self._queue_state.run)
        start("retention", self.retention.run)
        recorder = start("recorder", self._recorder.run)
        self._executors = [
            start(f"executor-{number}", self._execute)
            for number in range(self._settings.max_workers)
        ]
        logger.info(
            "worker started: {} threads, buffer {}, visibility timeout {} s",
            self._settings.max_workers,
            self._settings.read_ahead,
            self._settings.visibility_timeout,
        )
        # No timeout: every stop (a signal, a thread giving up, the parent gone)
        # sets the event, and a periodic wake-up here would only cost CPU.
        self.stop_event.wait()
        self._shutdown(fetcher, recorder)
        return 1 if self.supervision.failed.is_set() else 0

    def _shutdown(self, fetcher: threading.Thread, recorder: threading.Thread) -> None:
        deadline = time.monotonic() + self._settings.shutdown_grace_period
        logger.info("stopping: no new reads, draining in-flight calls")
        self._listener.interrupt()
        self._wakeups.wake_all()
        fetcher.join(timeout=max(deadline - time.monotonic(), 0))
        unstarted = self.dispatcher.close()
        self._release(unstarted)
        self._draining.set()
        for executor in self._executors:
            executor.join(timeout=max(deadline - time.monotonic(), 0))
        unfinished = sum(executor.is_alive() for executor in self._executors)
        if unfinished:
            logger.warning(
                "{} call(s) still running at the end of the grace period; their messages "
                "will be delivered again after the visibility timeout",
                unfinished,
            )
        self._recorder.finish(deadline + 2.0)
        recorder.join(timeout=max(deadline + 2.0 - time.monotonic(), 0))
        self._pool.close(timeout=2.0)
        logger.info("worker stopped")

    def _release(self, unstarted: list[Delivery]) -> None:
        if not unstarted:
            return
        try:
            self.repository.release(unstarted)
            logger.info("returned {} unstarted message(s) to their queues", len(unstarted))
        except DatabaseUnavailableError as error:
            logger.warning(
                "could not return {} unstarted message(s) ({}); they reappear after the "
                "visibility timeout",
                len(unstarted),
                error,
            )

    def _execute(self) -> None:
        rng = random.Random()
        finished: Delivery | None = None  # the message just called, its slot not yet freed
        while True:
            delivery = self.dispatcher.take(
                TAKE_TIMEOUT, finished=finished, idle_timeout=IDLE_TAKE_TIMEOUT
            )
            finished = None
            if delivery is None:
                if self._draining.is_set():
                    return
                continue
            if self._could_outlast_its_hiding(delivery):
                # It waited too long for a thread: the queue may show it again
                # while the call runs, and it would be delivered twice. Leave it;
                # it reappears when its visibility timeout ends.
                self.dispatcher.done(delivery)
                self._leases.drop(delivery.lease_id)  # its slot frees when the lease expires
                self.metrics.expired(delivery.task_type)
                continue
            if time.monotonic() > delivery.send_by:
                # Its rate token's slot has passed: sent now, it would arrive
                # bunched with calls that are on time. It goes back to the
                # queue and is read again with a fresh token.
                self.dispatcher.set_back(delivery)
                self._leases.drop(delivery.lease_id)  # the release frees its slot
                self.metrics.late(delivery.task_type)
                continue
            outcome = self._deliver(delivery, rng)
            self._leases.drop(delivery.lease_id)  # the recorder releases it with the outcome
            finished = delivery
            self._recorder.submit(outcome)
            self.metrics.observe(outcome)
            log_outcome(outcome)  # returns at once for a success

    def _could_outlast_its_hiding(self, delivery: Delivery) -> bool:
        if delivery.call is None:
            return False
        longest = longest_call(
            call_timeout(delivery.call, self._defaults.timeout, delivery.type_defaults)
        )
        return time.monotonic() + longest + STALE_MARGIN > delivery.hidden_until

    def _deliver(self, delivery: Delivery, rng: random.Random) -> Outcome:
        started = time.perf_counter()
        try:
            # A message whose host's circuit breaker is open waits instead.
            held = self.circuits.hold(delivery) if self.circuits is not None else None
            return held or deliver(delivery, self._session, self._defaults, rng)
        except Exception as error:
            # taskq failed on this message, not the target: it spends an attempt
            # like any other failure and ends in the DLQ (design decision 8).
            # Where it failed, but not the exception's text nor a traceback: both
            # can quote the message's own data (a header value, say).
            frame = traceback.extract_tb(error.__traceback__)[-1]
            logger.bind(**message_context(delivery)).error(
                "unexpected error while delivering: {} at {}:{} in {}",
                type(error).__name__,
                Path(frame.filename).name,
                frame.lineno,
                frame.name,
            )
            reason = f"worker error: {type(error).__name__}"
            duration_ms = (time.perf_counter() - started) * 1000.0
            if delivery.call is None:
                return Failed(delivery, reason, None, duration_ms)
            return outcome_for(
                delivery,
                self._defaults.policy_for(delivery.call, delivery.type_defaults),
                Happened(error=ErrorKind.WORKER_ERROR),
                reason=reason,
                duration_ms=duration_ms,
                rng=rng,
            )


def _circuit_view(settings: Settings, pool: SyncPool) -> CircuitView | None:
    """The per-host circuit breakers (None when BREAKER_ENABLED is false)."""
    policy = BreakerPolicy.from_settings(settings)
    if not policy.enabled:
        return None
    return CircuitView(
        CircuitRepository(pool, policy),
        policy,
        max_snoozes=settings.max_snoozes,
        max_snooze_delay=settings.max_snooze_delay,
    )
