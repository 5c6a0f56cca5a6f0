"""The retention job: keeps the status table and the DLQ from growing for ever.

Every ROUND_SECONDS, the replica that holds the retention lock deletes, in
batches of BATCH_ROWS rows (one short transaction each) and for at most
ROUND_BUDGET_SECONDS, the status rows of messages finished for good
(success, cancelled, or failed with their dead letter gone) last changed
more than STATUS_RETENTION ago, then, when DLQ_RETENTION is set, dead letters
older than that. What a round leaves is taken up by the next one. `run` is a
plain loop, ready to be handed to a supervisor; `run_round` is one round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loguru import logger

from taskq_core.errors import DatabaseUnavailableError
from taskq_core.repository.retention import Deleted, RetentionRepository
from taskq_worker.metrics import WorkerMetrics

ROUND_SECONDS = 30.0
BATCH_ROWS = 1000  # ~10-50 ms per batch: no lock is held longer than that
ROUND_BUDGET_SECONDS = 5.0  # then the database is left alone until the next round


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long things are kept, in seconds; None keeps them for ever."""

    status_retention: float | None
    dlq_retention: float | None

    @property
    def active(self) -> bool:
        return self.status_retention is not None or self.dlq_retention is not None


@dataclass(slots=True)
class RoundResult:
    led: bool = False  # this replica held the lock and ran the round
    statuses: int = 0
    tasks: int = 0
    dead_letters: int = 0
    hosts: int = 0  # idle hosts' circuit breakers forgotten
    complete: bool = True  # false when the budget ran out with rows left


class RetentionJob:
    def __init__(
        self,
        repository: RetentionRepository,
        policy: RetentionPolicy,
        metrics: WorkerMetrics,
        stop: threading.Event,
        *,
        batch_rows: int = BATCH_ROWS,
        budget_seconds: float = ROUND_BUDGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._policy = policy
        self._metrics = metrics
        self._stop = stop
        self._batch_rows = batch_rows
        self._budget = budget_seconds
        self._clock = clock

    def run(self) -> None:
        """Rounds every ROUND_SECONDS until stopped; an unreachable database skips a round."""
        if not self._policy.active:
            return
        try:
            while not self._stop.wait(ROUND_SECONDS):
                try:
                    self.run_round()
                except DatabaseUnavailableError as error:
                    logger.debug("retention round skipped: {}", error)
        finally:
            self.close()

    def close(self) -> None:
        """Give up the connection, and with it the retention lock."""
        self._repository.close()

    def run_round(self) -> RoundResult:
        """Delete what has expired, batch by batch, within the round's time budget."""
        result = RoundResult()
        if not self._repository.lead():
            return result
        result.led = True
        deadline = self._clock() + self._budget
        now = datetime.now(UTC)
        if self._policy.status_retention is not None:
            before = now - timedelta(seconds=self._policy.status_retention)
            result.complete = self._drain(
                lambda: self._repository.delete_statuses(before, self._batch_rows),
                result,
                deadline,
            )
            # Idle hosts' breakers go with the status rows of their time (one batch a round).
            result.hosts = self._repository.forget_idle_hosts(before, self._batch_rows)
        if self._policy.dlq_retention is not None and result.complete:
            before = now - timedelta(seconds=self._policy.dlq_retention)
            result.complete = self._drain(
                lambda: self._repository.delete_dead_letters(before, self._batch_rows),
                result,
                deadline,
            )
        if result.statuses or result.tasks or result.dead_letters:
            logger.info(
                "retention deleted {} status row(s), {} task(s), {} dead letter(s){}",
                result.statuses,
                result.tasks,
                result.dead_letters,
                "" if result.complete else " (more left for the next round)",
            )
        return result

    def _drain(self, batch: Callable[[], Deleted], result: RoundResult, deadline: float) -> bool:
        """Run `batch` until a short one or the deadline; True when nothing is left."""
        while not self._stop.is_set():
            deleted = batch()
            result.statuses += deleted.statuses
            result.tasks += deleted.tasks
            result.dead_letters += deleted.dead_letters
            self._metrics.retained(deleted)
            if max(deleted.statuses, deleted.dead_letters) < self._batch_rows:
                return True
            if self._clock() >= deadline:
                return False
        return False
