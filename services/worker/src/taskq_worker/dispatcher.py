"""The bounded hand-off between the fetcher and the executor threads, fair across task types.

Messages wait in one deque per task type. An executor takes from the types in
turn, and no type may occupy more than its fair share of the threads while
other types have work: a type whose target is slow cannot starve a fast one.
The fetcher asks `room_for(type)` before reading, so memory stays bounded by
the buffer size however long the backlog in the database is.

With a concurrency tuner, calls of fast types (recent calls shorter than
SLOW_CALL_SECONDS) are also held to the tuner's `limit`: they compete for the
GIL, and the threads above the limit wait, so the same few threads keep
working and no lock is handed around more than it must be. Calls that wait on
their targets cost the GIL nothing and are not limited; nor is a call that has
run longer than STALL_SECONDS, so one hanging call cannot hold up a process
tuned down to a single slot.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from taskq_core.deliveries import Delivery
from taskq_worker.concurrency import ConcurrencyTuner

SLOW_CALL_SECONDS = 0.02
STALL_SECONDS = 0.1
_DURATION_WEIGHT = 0.2  # of the newest call in a type's moving average duration


@dataclass(frozen=True, slots=True)
class _Running:
    task_type: str
    started_at: float
    limited: bool  # counted against the tuner's limit


class Dispatcher:
    def __init__(
        self,
        *,
        threads: int,
        buffer_size: int,
        tuner: ConcurrencyTuner | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threads = threads
        self._buffer_size = buffer_size
        self._tuner = tuner
        self._clock = clock
        self._waiting: dict[str, deque[Delivery]] = {}
        self._running: dict[str, int] = {}
        self._calls: dict[int, _Running] = {}  # id(delivery) of every call in flight
        self._limited = 0  # calls in flight that count against the tuner's limit
        self._call_seconds: dict[str, float] = {}  # moving average duration per type
        self._turn: deque[str] = deque()
        self._late: list[Delivery] = []  # missed their rate slot; the fetcher returns them
        self._lock = threading.Lock()
        # Two conditions on one lock so an executor finishing wakes one executor
        # and a message taken wakes the fetcher, never a herd of threads.
        self._work = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._closed = False

    def room_for(self, task_type: str, *, rate_limited: bool = False) -> int:
        """How many more messages of `task_type` may be buffered now.

        Zero until the type's buffer has drained to half its share: refilling
        in large reads keeps database round trips per message low. A
        rate-limited type refills only once its buffer is empty: its tokens
        are for now, and messages queued behind others in a process short of
        CPU would go out late and bunched (they would also hold tokens that
        another process could spend on time).
        """
        with self._lock:
            if self._closed:
                return 0
            share = math.ceil(self._buffer_size / self._active_types(including=task_type))
            waiting = len(self._waiting.get(task_type, ()))
            refill_at = 0 if rate_limited else share // 2
            return share - waiting if waiting <= refill_at else 0

    def put(self, task_type: str, deliveries: list[Delivery]) -> None:
        with self._lock:
            queue = self._waiting.get(task_type)
            if queue is None:
                queue = self._waiting[task_type] = deque()
                self._turn.append(task_type)
            queue.extend(deliveries)
            if self._may_start_more():
                self._work.notify(len(deliveries))

    def take(
        self,
        timeout: float,
        *,
        finished: Delivery | None = None,
        idle_timeout: float | None = None,
    ) -> Delivery | None:
        """The next message to call, or None after `timeout` seconds (or once closed and empty).

        `finished` is the message this executor just called: one lock round for
        both. The executor goes on to the next message itself, so another is
        woken only if there is still room after that (the freed share of a
        capped type, say). With nothing buffered at all the wait is
        `idle_timeout` instead: put() and close() wake a waiting executor, so
        an idle one need not wake on its own (without a tuner: with one, put()
        may leave it asleep behind a stalled call, which only time frees).
        """
        with self._lock:
            if finished is not None:
                self._finish(finished, called=True)
            delivery = self._next()
            if delivery is None:
                if not self._closed:
                    if (
                        idle_timeout is not None
                        and self._tuner is None
                        and not any(self._waiting.values())
                    ):
                        timeout = idle_timeout
                    self._work.wait(timeout)
                    delivery = self._next()
            elif finished is not None and self._may_start_more():
                self._work.notify()
            return delivery

    def done(self, delivery: Delivery) -> None:
        """An executor gave `delivery` up without calling it."""
        with self._lock:
            self._finish(delivery, called=False)

    def set_back(self, delivery: Delivery) -> None:
        """An executor gave `delivery` up uncalled because its rate slot passed: the fetcher
        returns it to the queue (take_late), where it is read again with a fresh token."""
        with self._lock:
            self._finish(delivery, called=False)
            self._late.append(delivery)
            self._room.notify()

    def take_late(self) -> list[Delivery]:
        """The messages set back since the last call, for the fetcher to return to the queue."""
        with self._lock:
            late, self._late = self._late, []
            return late

    def read_done(self, task_type: str, *, backlogged: bool) -> None:
        """The fetcher read `task_type`: `backlogged` if it found as much as there was room for."""
        if self._tuner is not None:
            with self._lock:
                self._tuner.read_done(task_type, backlogged=backlogged)

    def limit(self) -> int:
        """How many calls of fast types may run at once now."""
        return self._threads if self._tuner is None else self._tuner.limit

    def wait_for_room(self, timeout: float) -> None:
        with self._lock:
            self._room.wait(timeout)

    def evict(self, task_type: str) -> list[Delivery]:
        """Take back the buffered messages of `task_type` that no executor has started."""
        with self._lock:
            queue = self._waiting.get(task_type)
            if not queue:
                return []
            evicted = list(queue)
            queue.clear()
            self._room.notify_all()
            return evicted

    def close(self) -> list[Delivery]:
        """Stop handing out work; return the buffered messages that never started."""
        with self._lock:
            self._closed = True
            unstarted = [delivery for queue in self._waiting.values() for delivery in queue]
            unstarted += self._late
            self._late = []
            self._waiting.clear()
            self._turn.clear()
            self._work.notify_all()
            self._room.notify_all()
            return unstarted

    def in_flight(self) -> int:
        with self._lock:
            return len(self._calls)

    def buffered(self) -> int:
        with self._lock:
            return sum(len(queue) for queue in self._waiting.values())

    def _active_types(self, including: str) -> int:
        active = {name for name, queue in self._waiting.items() if queue}
        active.update(name for name, count in self._running.items() if count)
        active.add(including)
        return len(active)

    def _finish(self, delivery: Delivery, *, called: bool) -> None:
        call = self._calls.pop(id(delivery))
        task_type = call.task_type
        self._running[task_type] -= 1
        if call.limited:
            self._limited -= 1
        tuner = self._tuner
        if not called or tuner is None:  # durations only matter to the tuner's limit
            return
        now = self._clock()
        average = self._call_seconds.get(task_type, SLOW_CALL_SECONDS)
        seconds = now - call.started_at
        self._call_seconds[task_type] = average + _DURATION_WEIGHT * (seconds - average)
        before = tuner.limit
        tuner.completed(task_type, now)
        tuner.tick(now)
        if tuner.limit != before:
            logger.debug("concurrency limit {} -> {}", before, tuner.limit)
            if tuner.limit > before:
                self._work.notify(tuner.limit - before)

    def _may_start_more(self) -> bool:
        """Whether waking an idle executor could start a call (else it would only sleep again)."""
        if len(self._calls) >= self._threads:
            return False
        if self._tuner is None or self._limited < self._tuner.limit:
            return True
        return any(
            queue and self._call_seconds.get(task_type, SLOW_CALL_SECONDS) >= SLOW_CALL_SECONDS
            for task_type, queue in self._waiting.items()
        )

    def _room_for_limited(self, now: float) -> bool:
        """True if one more call of a fast type may start (hanging ones leave their slots)."""
        assert self._tuner is not None
        if self._limited < self._tuner.limit:
            return True
        stalled = sum(
            1
            for call in self._calls.values()
            if call.limited and now - call.started_at > STALL_SECONDS
        )
        return self._limited - stalled < self._tuner.limit

    def _next(self) -> Delivery | None:
        """Round-robin over types with waiting messages, skipping a type over its thread share."""
        if not self._turn:
            return None
        now = self._clock()
        cap = max(1, math.ceil(self._threads / self._demanding_types()))
        fast_allowed: bool | None = None  # worked out once, if a fast type is next
        for _ in range(len(self._turn)):
            task_type = self._turn[0]
            self._turn.rotate(-1)
            queue = self._waiting[task_type]
            if not queue or self._running.get(task_type, 0) >= cap:
                continue
            # A type is taken for slow (not limited) until its calls show otherwise.
            limited = (
                self._tuner is not None
                and self._call_seconds.get(task_type, SLOW_CALL_SECONDS) < SLOW_CALL_SECONDS
            )
            if limited:
                if fast_allowed is None:
                    fast_allowed = self._room_for_limited(now)
                if not fast_allowed:
                    continue
            self._running[task_type] = self._running.get(task_type, 0) + 1
            delivery = queue.popleft()
            self._calls[id(delivery)] = _Running(task_type, now, limited)
            if limited:
                self._limited += 1
            if len(queue) <= self._buffer_size // 2:
                # Below the refill mark: the fetcher may read this type again
                # (a rate-limited type once empty; an early wake-up costs one look).
                self._room.notify()
            return delivery
        return None

    def _demanding_types(self) -> int:
        demanding = sum(
            1 for name, queue in self._waiting.items() if queue or self._running.get(name, 0)
        )
        return max(1, demanding)
