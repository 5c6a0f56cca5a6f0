"""Writes outcomes to the database in batches, off the executor threads.

Executors hand each outcome over and move on; this thread writes whatever has
accumulated in one transaction, so the database sees a few writes per batch
rather than several per call. While the database is away it keeps the batch
and retries: the messages stay hidden until their visibility timeout, so even
giving up at shutdown loses nothing (they are delivered again).
"""

from __future__ import annotations

import queue
import threading
import time

from loguru import logger

from taskq_core.deliveries import Outcome, RetryLater
from taskq_core.errors import DatabaseUnavailableError
from taskq_core.repository.worker import WorkerRepository
from taskq_worker.health import DatabaseHealth
from taskq_worker.wakeups import Wakeups

MAX_BATCH = 500
# After the first outcome arrives, wait this long for more before writing: a
# write per 25 ms rather than per outcome keeps database work per call small,
# and the recorder is not woken once per call (measured against a fast target:
# 25 ms windows delivered ~10% more than 10 ms ones, 60 ms no more than 25).
# Status lags by at most this; delivery itself does not wait for it.
BATCH_WINDOW_SECONDS = 0.025
DATABASE_RETRY_MAX = 5.0
# An idle recorder wakes this often to see whether it should finish (each
# wake-up costs CPU in every worker process, busy or not); finishing waits for it.
IDLE_WAKE_SECONDS = 0.25
DUE_MARGIN_SECONDS = 0.005  # a retry is read this long after it should be visible again


class Recorder:
    def __init__(
        self, repository: WorkerRepository, health: DatabaseHealth, wakeups: Wakeups
    ) -> None:
        self._repository = repository
        self._health = health
        self._wakeups = wakeups
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._finish_by: float | None = None
        self._finishing = threading.Event()

    def submit(self, outcome: Outcome) -> None:
        self._outcomes.put(outcome)

    def finish(self, deadline: float) -> None:
        """Write what is left, giving up at `deadline` (time.monotonic)."""
        self._finish_by = deadline
        self._finishing.set()

    def run(self) -> None:
        while True:
            batch = self._collect()
            if batch:
                self._write(batch)
            elif self._finishing.is_set():
                return

    def _collect(self) -> list[Outcome]:
        try:
            batch = [self._outcomes.get(timeout=IDLE_WAKE_SECONDS)]
        except queue.Empty:
            return []
        if not self._finishing.is_set():
            time.sleep(BATCH_WINDOW_SECONDS)
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._outcomes.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Outcome]) -> None:
        delay = 0.1
        while True:
            try:
                self._repository.record(batch)
            except DatabaseUnavailableError as error:
                self._health.mark_down(error)
                if self._finish_by is not None and time.monotonic() + delay > self._finish_by:
                    logger.warning(
                        "shutting down with {} outcome(s) unwritten; their messages will be "
                        "delivered again after the visibility timeout",
                        len(batch),
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, DATABASE_RETRY_MAX)
            except Exception:
                # A bug, not an outage: retrying would fail forever. The messages
                # stay hidden until their visibility timeout and are delivered again.
                logger.exception("could not record {} outcome(s); dropping the batch", len(batch))
                return
            else:
                self._health.mark_up()
                self._announce_retries(batch)
                return

    def _announce_retries(self, batch: list[Outcome]) -> None:
        """Tell the fetcher when the retries just written come due, so it reads them on time.

        The delays count from now or earlier (the database set each message's
        visibility when the write began), so no retry is looked for too early.
        """
        now = time.monotonic()
        for outcome in batch:
            if isinstance(outcome, RetryLater):
                due = now + outcome.delay + DUE_MARGIN_SECONDS
                self._wakeups.due(outcome.delivery.queue_name, due)
