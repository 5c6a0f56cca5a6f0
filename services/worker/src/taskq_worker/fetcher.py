"""Reads work into the dispatcher: rate tokens first, then exactly as many messages.

One fetcher thread per process. For each task type it asks the dispatcher how
many messages fit, takes that many tokens from the type's shared bucket (the
limit holds across every replica), and reads only what it may send, so a
rate-limited backlog is never read just to be put back (design decision 3).

A fault confined to one type (its queue table dropped, renamed or unreadable)
sets that type aside with a backoff while the others keep flowing; anything
else propagates to the supervision, which restarts this thread.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from taskq_core.call_limits import call_timeout, longest_call
from taskq_core.deliveries import Delivery, TaskTypeRoute
from taskq_core.errors import DatabaseUnavailableError, TaskTypeUnavailableError
from taskq_core.repository.worker import WorkerRepository
from taskq_worker.dispatcher import Dispatcher
from taskq_worker.health import DatabaseHealth
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.reconnect import Backoff
from taskq_worker.wakeups import Wakeups

READ_BATCH = 100
ROUTES_REFRESH_SECONDS = 1.0  # a changed max_rps or a new type is seen within this
IDLE_FIRST_POLL = 0.01
IDLE_LAST_POLL = 1.0  # NOTIFY wakes us sooner; polling only catches retries coming due
SET_ASIDE_FIRST = 1.0  # seconds a failing type is left alone, doubling up to SET_ASIDE_MAX
SET_ASIDE_MAX = 30.0
LONG_CALL_MARGIN = 10.0  # seconds a message may wait in the buffer before its call starts


@dataclass(slots=True)
class _Schedule:
    """When a task type is next worth reading, and how long its queue has been empty."""

    next_at: float = 0.0
    idle_delay: float = 0.0
    waiting_for_tokens: bool = False
    reserved: int = 0  # tokens already taken, usable from next_at on
    retry_due_at: float = math.inf  # when the earliest retry this replica scheduled comes due
    set_aside: Backoff | None = None  # while the type's queue fails: how long to leave it


class Fetcher:
    def __init__(
        self,
        repository: WorkerRepository,
        dispatcher: Dispatcher,
        *,
        visibility_timeout: float,
        call_timeout: float,
        wakeups: Wakeups,
        health: DatabaseHealth,
        metrics: WorkerMetrics,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self._repository = repository
        self._heartbeat = heartbeat
        self._dispatcher = dispatcher
        self._visibility_timeout = visibility_timeout
        self._call_timeout = call_timeout
        self._wakeups = wakeups
        self._health = health
        self._metrics = metrics
        self._stop = stop
        self._clock = clock
        self._routes: list[TaskTypeRoute] = []
        self._routes_at = -ROUTES_REFRESH_SECONDS
        self._schedules: dict[str, _Schedule] = {}
        self._start = 0

    def run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            self._heartbeat()
            try:
                self._refresh_routes()
                read_any, out_of_room = self._fetch_round()
                self._health.mark_up()
                backoff.reset()
            except DatabaseUnavailableError as error:
                self._health.mark_down(error)
                self._stop.wait(backoff.next())
                continue
            if not read_any:
                self._pause(out_of_room)

    def _refresh_routes(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._routes_at < ROUTES_REFRESH_SECONDS:
            return
        self._routes = self._repository.routes()
        self._routes_at = now
        for route in self._routes:
            self._schedules.setdefault(route.task_type, _Schedule())

    def _fetch_round(self) -> tuple[bool, bool]:
        """One pass over the types that are due; returns (read anything, some type lacked room)."""
        self._apply_wakeups()
        read_any = out_of_room = False
        routes = self._routes
        if not routes:
            return False, False
        # Start each round one type further so no type always goes first.
        self._start = (self._start + 1) % len(routes)
        for route in routes[self._start :] + routes[: self._start]:
            schedule = self._schedules[route.task_type]
            now = self._clock()
            if schedule.next_at > now or self._stop.is_set():
                continue
            room = min(self._dispatcher.room_for(route.task_type), READ_BATCH)
            if room <= 0:
                out_of_room = True
                continue
            allowed = self._allowed(route, room, schedule, now)
            if allowed == 0:
                self._dispatcher.read_done(route.task_type, backlogged=False)
                continue
            try:
                deliveries = self._repository.read(route, allowed, self._visibility_timeout)
            except TaskTypeUnavailableError as error:
                self._set_aside(schedule, error, now)
                continue
            if schedule.set_aside is not None:
                schedule.set_aside = None
                self._metrics.set_aside(route.task_type, aside=False)
                logger.info("task type {} is readable again, resuming", route.task_type)
            if now >= schedule.retry_due_at:
                schedule.retry_due_at = math.inf
            # A read that filled the room means a backlog: how fast it drains
            # depends on the executors, which is what the concurrency tuner measures.
            self._dispatcher.read_done(route.task_type, backlogged=len(deliveries) == room)
            if deliveries:
                deliveries = self._keep_long_calls_hidden(deliveries)
                self._dispatcher.put(route.task_type, deliveries)
                self._metrics.fetched(route.task_type, len(deliveries))
                schedule.idle_delay = 0.0
                read_any = True
            else:
                schedule.waiting_for_tokens = False
                schedule.idle_delay = min(
                    max(schedule.idle_delay * 2, IDLE_FIRST_POLL), IDLE_LAST_POLL
                )
                # Idle polls back off, but never past a retry known to come due.
                schedule.next_at = min(now + schedule.idle_delay, schedule.retry_due_at)
        return read_any, out_of_room

    def _set_aside(self, schedule: _Schedule, error: TaskTypeUnavailableError, now: float) -> None:
        """Leave a type whose queue fails alone for a while; the others are not held up."""
        if schedule.set_aside is None:
            schedule.set_aside = Backoff(first=SET_ASIDE_FIRST, cap=SET_ASIDE_MAX)
            logger.warning("{}; setting it aside and retrying with backoff", error)
        self._metrics.set_aside(error.task_type, aside=True)
        schedule.reserved = 0  # tokens taken for a read that failed are not carried over
        schedule.waiting_for_tokens = False
        schedule.next_at = now + schedule.set_aside.next()

    def _keep_long_calls_hidden(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Hide messages whose call may outlast VISIBILITY_TIMEOUT for as long as it may take.

        Otherwise a message would reappear while its call is still running and
        be delivered twice: the longest a call can take (call_limits), plus the
        time it may wait for a thread.
        """
        long_calls = []
        for delivery in deliveries:
            longest = longest_call(call_timeout(delivery.call, self._call_timeout))
            longest += LONG_CALL_MARGIN
            if longest > self._visibility_timeout:
                long_calls.append((delivery, longest))
        if not long_calls:
            return deliveries
        self._repository.hide_for(
            [delivery for delivery, _ in long_calls], [seconds for _, seconds in long_calls]
        )
        now = self._clock()
        extended = {
            delivery.message_id: dataclasses.replace(delivery, hidden_until=now + seconds)
            for delivery, seconds in long_calls
        }
        return [extended.get(delivery.message_id, delivery) for delivery in deliveries]

    def _allowed(self, route: TaskTypeRoute, wanted: int, schedule: _Schedule, now: float) -> int:
        """How many messages of `route` may be read now under its global rate limit."""
        if route.max_rps is None:
            return wanted
        if schedule.reserved:
            # Tokens reserved earlier are due now; what does not fit is dropped:
            # using a token late could bunch sends together.
            allowed, schedule.reserved = min(schedule.reserved, wanted), 0
            schedule.waiting_for_tokens = False
            return allowed
        grant = self._repository.take_tokens(route.task_type, wanted)
        if grant is None:  # the limit was removed since the routes were read
            return wanted
        schedule.waiting_for_tokens = grant.granted == 0 or grant.wait_seconds > 0
        if schedule.waiting_for_tokens:
            schedule.reserved = grant.granted
            schedule.next_at = now + max(grant.wait_seconds, 0.001)
            self._metrics.rate_limited(route.task_type, grant.wait_seconds)
            return 0
        return grant.granted

    def _apply_wakeups(self) -> None:
        woken = self._wakeups.take()
        if not woken:
            return
        known = {route.queue_name: route.task_type for route in self._routes}
        if woken.everything or (woken.queues | woken.due.keys()) - known.keys():
            self._refresh_routes(force=True)
            known = {route.queue_name: route.task_type for route in self._routes}
        notified = (
            known.values() if woken.everything else [known[q] for q in woken.queues if q in known]
        )
        for task_type in notified:
            schedule = self._schedules[task_type]
            schedule.idle_delay = 0.0
            # A type waiting for its next token keeps waiting: new work does not make
            # tokens; nor does it mend a type set aside.
            if not schedule.waiting_for_tokens and schedule.set_aside is None:
                schedule.next_at = 0.0
        for queue_name, at in woken.due.items():
            if queue_name in known:
                schedule = self._schedules[known[queue_name]]
                schedule.retry_due_at = min(schedule.retry_due_at, at)
                # Reserved tokens are for their own time; a type set aside waits out its backoff.
                if not schedule.waiting_for_tokens and schedule.set_aside is None:
                    schedule.next_at = min(schedule.next_at, at)

    def _pause(self, out_of_room: bool) -> None:
        """Sleep until a type is due, new work is announced, or (when full) room frees up."""
        now = self._clock()
        due = min((s.next_at for s in self._schedules.values()), default=now + IDLE_LAST_POLL)
        timeout = min(max(due - now, 0.0), IDLE_LAST_POLL)
        if timeout <= 0 and not out_of_room:
            return
        if out_of_room:
            self._dispatcher.wait_for_room(timeout or IDLE_FIRST_POLL)
        else:
            self._wakeups.wait(timeout)
