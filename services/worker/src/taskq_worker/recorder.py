"""Writes outcomes to the database in batches, off the executor threads.

Executors hand each outcome over and move on; this thread writes whatever has
accumulated in one transaction, with the batch's calls per host for the
circuit breakers, so the database sees a few writes per batch rather than
several per call. While the database is away it keeps the batch
and retries: the messages stay hidden until their visibility timeout, so even
giving up at shutdown loses nothing (they are delivered again).

Any other error is first narrowed down (`_record`): a part that fails alone, or
whose error names its queue's table, is that task type's fault; its outcomes
are dropped and its messages delivered again later. What cannot be pinned on
one type propagates to the supervision, which restarts this thread with those
outcomes kept for the next attempt.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from taskq_core.deliveries import Outcome, RetryLater, Snoozed
from taskq_core.errors import DatabaseError, DatabaseUnavailableError
from taskq_core.repository.worker import WorkerRepository
from taskq_worker.circuit_view import CircuitView
from taskq_worker.health import DatabaseHealth
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.reconnect import Backoff
from taskq_worker.wakeups import Wakeups

MAX_BATCH = 500
# After the first outcome arrives, wait this long for more before writing: a
# write per 25 ms rather than per outcome keeps database work per call small,
# and the recorder is not woken once per call (measured against a fast target:
# 25 ms windows delivered ~10% more than 10 ms ones, 60 ms no more than 25).
# Status lags by at most this; delivery itself does not wait for it.
BATCH_WINDOW_SECONDS = 0.025
# An idle recorder wakes this often, only to beat its heartbeat (the liveness
# watchdog; the supervisor keeps it well inside LIVENESS_TIMEOUT): finish()
# wakes it at once, and each wake-up costs CPU in every idle worker process.
IDLE_WAKE_SECONDS = 5.0
DUE_MARGIN_SECONDS = 0.005  # a retry is read this long after it should be visible again


@dataclass(frozen=True, slots=True)
class _Failed:
    """The outcomes of one queue whose write failed, and why."""

    queue: str
    outcomes: list[Outcome]
    error: DatabaseError


class Recorder:
    def __init__(
        self,
        repository: WorkerRepository,
        health: DatabaseHealth,
        wakeups: Wakeups,
        metrics: WorkerMetrics,
        *,
        heartbeat: Callable[[], None] = lambda: None,
        circuits: CircuitView | None = None,
        idle_wake: float = IDLE_WAKE_SECONDS,
    ) -> None:
        self._repository = repository
        self._circuits = circuits  # told every batch's calls, per host
        self._health = health
        self._wakeups = wakeups
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._idle_wake = idle_wake
        # None is finish()'s wake-up call, not an outcome.
        self._outcomes: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._unwritten: list[Outcome] = []  # kept across a restart of this thread
        self._finish_by: float | None = None
        self._finishing = threading.Event()

    def submit(self, outcome: Outcome) -> None:
        self._outcomes.put(outcome)

    def finish(self, deadline: float) -> None:
        """Write what is left, giving up at `deadline` (time.monotonic)."""
        self._finish_by = deadline
        self._finishing.set()
        self._outcomes.put(None)

    def run(self) -> None:
        while True:
            self._heartbeat()
            batch = self._unwritten or self._collect()
            if batch:
                self._unwritten = batch
                self._write(batch)
                self._unwritten = []
            elif self._finishing.is_set():
                return

    def _collect(self) -> list[Outcome]:
        finishing = self._finishing.is_set()
        try:
            # Once finishing, what is left is written without waiting for more.
            first = self._outcomes.get(block=not finishing, timeout=self._idle_wake)
        except queue.Empty:
            return []
        if first is None:  # finish() was called: run() returns
            return []
        batch = [first]
        if not finishing:
            time.sleep(BATCH_WINDOW_SECONDS)
        while len(batch) < MAX_BATCH:
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                break
            if outcome is not None:
                batch.append(outcome)
        return batch

    def _write(self, batch: list[Outcome]) -> None:
        backoff = Backoff()
        while True:
            self._heartbeat()
            try:
                self._record(batch)
            except DatabaseUnavailableError as error:
                self._health.mark_down(error)
                delay = backoff.next()
                if self._finish_by is not None and time.monotonic() + delay > self._finish_by:
                    logger.warning(
                        "shutting down with {} outcome(s) unwritten; their messages will be "
                        "delivered again after the visibility timeout",
                        len(batch),
                    )
                    return
                time.sleep(delay)
            else:
                self._health.mark_up()
                self._announce_retries(batch)
                return

    def _record(self, batch: list[Outcome]) -> None:
        """Write `batch`; if that fails for another reason than an outage, narrow the fault down.

        Outcomes of a queue whose own write fails while others succeed, or whose
        error names its table, are that task type's fault: they are dropped
        (their messages are delivered again after the visibility timeout); the
        calls of the parts written are added to the host breakers. Any other
        failure propagates, its outcomes kept for the next attempt.
        """
        if self._circuits is not None and self._record_with_breakers(batch, self._circuits):
            return
        try:
            self._repository.record(batch)
        except DatabaseUnavailableError:
            raise
        except DatabaseError as whole_batch:
            failure = whole_batch
        else:
            if self._circuits is not None:
                self._circuits.record(batch)  # on its own: never a reason to fail the batch
            return
        self._record_by_queue(batch, failure)

    def _record_by_queue(self, batch: list[Outcome], failure: DatabaseError) -> None:
        """Write `batch` queue by queue (it failed whole with `failure`): see `_record`."""
        by_queue: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in batch:
            by_queue[outcome.delivery.queue_name].append(outcome)
        if len(by_queue) == 1:
            failed = [_Failed(queue, outcomes, failure) for queue, outcomes in by_queue.items()]
        else:
            failed = [part for part in map(self._try_part, by_queue.items()) if part]
        some_written = len(failed) < len(by_queue)
        if some_written and self._circuits is not None:
            # The written parts' calls are on record: the breakers count them, in one
            # statement, once (nothing written here is written again). A dropped
            # part's calls are not: its messages are called again, and those count.
            lost = {part.queue for part in failed}
            self._circuits.record(
                [outcome for outcome in batch if outcome.delivery.queue_name not in lost]
            )
        kept: list[_Failed] = []
        for part in failed:
            if some_written or f"q_{part.queue}" in part.error.message:
                self._drop(part.outcomes, part.error)
            else:
                kept.append(part)
        if kept:
            self._unwritten = [outcome for part in kept for outcome in part.outcomes]
            raise kept[0].error

    def _record_with_breakers(self, batch: list[Outcome], circuits: CircuitView) -> bool:
        """Write `batch` and its calls per host in one transaction; False if that failed.

        The breakers only advise: when the joint write fails for another reason
        than an outage, the outcomes are written without them (and the breakers
        on their own), so a breaker's fault never holds outcomes back.
        """
        host_calls = circuits.host_calls(batch)
        if host_calls is None:  # no calls made: nothing to add
            return False
        try:
            circuits.written(self._repository.record(batch, host_calls))
        except DatabaseUnavailableError:
            raise
        except DatabaseError as error:
            # Logged where it is narrowed down: the outcomes' part or the breakers' alone.
            logger.debug("outcomes and breakers not written together ({}); apart", error.message)
            return False
        return True

    def _try_part(self, part: tuple[str, list[Outcome]]) -> _Failed | None:
        queue, outcomes = part
        try:
            self._repository.record(outcomes)
        except DatabaseUnavailableError:
            raise
        except DatabaseError as error:
            return _Failed(queue, outcomes, error)
        return None

    def _drop(self, outcomes: list[Outcome], error: DatabaseError) -> None:
        task_type = outcomes[0].delivery.task_type
        self._metrics.task_type_errors.labels(task_type).inc()
        logger.warning(
            "could not record {} outcome(s) of task type {} ({}); their messages will be "
            "delivered again after the visibility timeout",
            len(outcomes),
            task_type,
            error.message,
        )

    def _announce_retries(self, batch: list[Outcome]) -> None:
        """Tell the fetcher when the retries just written come due, so it reads them on time.

        The delays count from now or earlier (the database set each message's
        visibility when the write began), so no retry is looked for too early.
        """
        now = time.monotonic()
        for outcome in batch:
            if isinstance(outcome, RetryLater | Snoozed):
                due = now + outcome.delay + DUE_MARGIN_SECONDS
                self._wakeups.due(outcome.delivery.queue_name, due)
