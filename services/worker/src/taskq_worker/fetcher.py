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
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from taskq_core.call_limits import call_timeout, longest_call
from taskq_core.deliveries import Delivery, ReadBatch, TaskTypeRoute, TaskTypesVersion
from taskq_core.errors import DatabaseUnavailableError, TaskTypeUnavailableError
from taskq_core.repository.worker import WorkerRepository
from taskq_worker.dispatcher import Dispatcher
from taskq_worker.health import DatabaseHealth
from taskq_worker.leases import LEASE_SECONDS, RENEW_EVERY, LeaseBook
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.reconnect import Backoff
from taskq_worker.wakeups import Wakeups

READ_BATCH = 100
# Idle queues are not polled one by one: every DUE_POLL_SECONDS one indexed
# query lists the queues due within DUE_HORIZON (submissions, other replicas'
# retries, released and reprocessed messages, messages whose reader died), and
# tells whether a task type was added or changed. NOTIFY wakes us sooner for
# new work, and this replica's own retries are read when they come due.
DUE_POLL_SECONDS = 1.0  # per replica: each of its N processes polls every N seconds, staggered
DUE_HORIZON_MARGIN = 1.0  # the horizon exceeds the interval, so nothing comes due unseen
DUE_NOW_DELAY = 0.01  # a dry queue that is due again at once (a message locked by another reader)
SET_ASIDE_FIRST = 1.0  # seconds a failing type is left alone, doubling up to SET_ASIDE_MAX
SET_ASIDE_MAX = 30.0
LONG_CALL_MARGIN = 10.0  # seconds a message may wait in the buffer before its call starts
SLOT_POLL = 0.05  # how often a type at its max_concurrency looks for a freed slot


@dataclass(slots=True)
class _Schedule:
    """When a task type is next worth reading (never, until something says it is due)."""

    next_at: float = math.inf
    waiting_for_tokens: bool = False
    reserved: int = 0  # tokens already taken, usable from next_at on
    reserved_at: float = 0.0  # the slot of the reserved tokens (next_at when they were taken)
    retry_due_at: float = math.inf  # when the earliest retry this replica scheduled comes due
    set_aside: Backoff | None = None  # while the type's queue fails: how long to leave it

    def wake_at(self, at: float) -> None:
        """Read no later than `at`; a type waiting for tokens keeps waiting (they are its slot),
        and a type set aside waits out its backoff."""
        if not self.waiting_for_tokens and self.set_aside is None:
            self.next_at = min(self.next_at, at)


class Fetcher:
    def __init__(
        self,
        repository: WorkerRepository,
        dispatcher: Dispatcher,
        *,
        visibility_timeout: float,
        call_timeout: float,
        wakeups: Wakeups,
        rate_slot_margin: float = 0.03,
        health: DatabaseHealth,
        metrics: WorkerMetrics,
        stop: threading.Event,
        processes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: Callable[[], None] = lambda: None,
        leases: LeaseBook | None = None,
    ) -> None:
        self._repository = repository
        self._leases = leases or LeaseBook()
        self._renewed_at = 0.0
        self._heartbeat = heartbeat
        self._dispatcher = dispatcher
        self._visibility_timeout = visibility_timeout
        self._call_timeout = call_timeout
        # How long after its rate token's slot a call may still start. A process
        # short of CPU starts calls late; sent then, they arrive bunched with other
        # processes' calls that are on time and a 1 s window sees more than max_rps.
        # A call later than this goes back to the queue for a fresh token instead.
        self._rate_slot_margin = rate_slot_margin
        self._wakeups = wakeups
        self._health = health
        self._metrics = metrics
        self._stop = stop
        self._clock = clock
        self._routes: list[TaskTypeRoute] = []
        self._task_types: dict[str, str] = {}  # queue name -> task type
        self._version: TaskTypesVersion | None = None
        # The replica's processes share the polling: one question per second in all.
        self._due_poll_every = DUE_POLL_SECONDS * max(processes, 1)
        self._due_poll_at = clock() + random.uniform(0, self._due_poll_every)
        self._schedules: dict[str, _Schedule] = {}
        self._start = 0

    def run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            self._heartbeat()
            try:
                self._renew_leases()
                self._poll_due()
                read_any, out_of_room = self._fetch_round()
                self._health.mark_up()
                backoff.reset()
            except DatabaseUnavailableError as error:
                self._health.mark_down(error)
                self._stop.wait(backoff.next())
                continue
            if not read_any:
                self._pause(out_of_room)

    def _poll_due(self, *, force: bool = False) -> None:
        """Every poll interval (or when told to): which queues are due, did the types change."""
        now = self._clock()
        if not force and now < self._due_poll_at:
            return
        self._due_poll_at = now + self._due_poll_every
        version, due = self._repository.due_queues(self._due_poll_every + DUE_HORIZON_MARGIN)
        if version != self._version:
            self._refresh_routes()
            self._version = version
        for queue in due:
            task_type = self._task_types.get(queue.queue_name)
            if task_type is not None:
                self._schedules[task_type].wake_at(now + max(queue.due_in, 0.0))

    def _refresh_routes(self) -> None:
        routes = self._repository.routes()
        paused_now = {route.task_type for route in routes if route.paused} - {
            route.task_type for route in self._routes if route.paused
        }
        self._routes = routes
        self._task_types = {route.queue_name: route.task_type for route in self._routes}
        for task_type in paused_now:
            self._hand_back(task_type)
        for route in self._routes:
            self._schedules.setdefault(route.task_type, _Schedule())

    def _return_late(self) -> None:
        """Calls that missed their rate slot go back to the queue, to be read with fresh tokens."""
        late = self._dispatcher.take_late()
        if not late:
            return
        self._repository.release(late)
        now = self._clock()
        for task_type in {delivery.task_type for delivery in late}:
            schedule = self._schedules.get(task_type)
            if schedule is not None:
                schedule.wake_at(now)  # unless it already waits for tokens
        logger.debug("{} call(s) missed their rate slot; returned to the queue", len(late))

    def _hand_back(self, task_type: str) -> None:
        """A type was paused: its buffered, unstarted messages go back to the queue at once."""
        evicted = self._dispatcher.evict(task_type)
        if evicted:
            self._repository.release(evicted)
            logger.bind(task_type=task_type).info(
                "task type paused: {} buffered message(s) returned to the queue", len(evicted)
            )

    def _fetch_round(self) -> tuple[bool, bool]:
        """One pass over the types that are due; returns (read anything, some type lacked room)."""
        self._apply_wakeups()
        self._return_late()
        read_any = out_of_room = False
        routes = self._routes
        if not routes:
            return False, False
        # Start each round one type further so no type always goes first.
        self._start = (self._start + 1) % len(routes)
        for route in routes[self._start :] + routes[: self._start]:
            schedule = self._schedules[route.task_type]
            now = self._clock()
            if route.paused or schedule.next_at > now or self._stop.is_set():
                continue
            room = min(
                self._dispatcher.room_for(route.task_type, rate_limited=route.max_rps is not None),
                READ_BATCH,
            )
            if room <= 0:
                out_of_room = True
                continue
            slots: list[int] = []
            if route.max_concurrency is not None:
                # Slots first: tokens taken for calls that cannot start would be lost.
                slots = self._repository.take_slots(route.task_type, room, LEASE_SECONDS)
                if not slots:
                    schedule.next_at = now + SLOT_POLL
                    self._dispatcher.read_done(route.task_type, backlogged=False)
                    continue
                room = len(slots)
            allowed, slot = self._allowed(route, room, schedule, now)
            if allowed == 0:
                self._release_slots(slots)
                self._dispatcher.read_done(route.task_type, backlogged=False)
                continue
            try:
                batch = self._repository.read(
                    route,
                    allowed,
                    self._visibility_timeout,
                    send_by=self._send_by(route, slot, allowed),
                )
            except TaskTypeUnavailableError as error:
                self._release_slots(slots)
                self._set_aside(schedule, error, now)
                continue
            if schedule.set_aside is not None:
                schedule.set_aside = None
                self._metrics.set_aside(route.task_type, aside=False)
                logger.info("task type {} is readable again, resuming", route.task_type)
            deliveries = batch.deliveries
            if now >= schedule.retry_due_at:
                schedule.retry_due_at = math.inf
            # A read that filled the room means a backlog: how fast it drains
            # depends on the executors, which is what the concurrency tuner measures.
            self._dispatcher.read_done(route.task_type, backlogged=len(deliveries) == room)
            read_any = self._take_in(route, schedule, now, batch, slots) or read_any
        return read_any, out_of_room

    def _take_in(
        self,
        route: TaskTypeRoute,
        schedule: _Schedule,
        now: float,
        batch: ReadBatch,
        slots: list[int],
    ) -> bool:
        """Hand what was read to the dispatcher and schedule the type's next read; True if any."""
        deliveries = batch.deliveries
        self._release_slots(slots[len(deliveries) :])
        if deliveries:
            deliveries = self._keep_long_calls_hidden(deliveries)
            if slots:
                deliveries = self._with_slots(deliveries, slots)
            self._dispatcher.put(route.task_type, deliveries)
            self._metrics.fetched(route.task_type, len(deliveries))
        else:
            schedule.waiting_for_tokens = False
        if batch.dry:
            # Not read again until it is due (the database said when), new
            # work is announced, or a retry of ours comes due.
            due_in = math.inf if batch.due_in is None else max(batch.due_in, DUE_NOW_DELAY)
            due_at = now + due_in
            if not schedule.waiting_for_tokens:
                schedule.next_at = min(due_at, schedule.retry_due_at)
        return bool(deliveries)

    def _with_slots(self, deliveries: list[Delivery], slots: list[int]) -> list[Delivery]:
        """Each delivery with the lease of its slot, renewed while its call may run."""
        leased = []
        for delivery, lease_id in zip(deliveries, slots, strict=False):
            self._leases.hold(lease_id, delivery.hidden_until)
            leased.append(dataclasses.replace(delivery, lease_id=lease_id))
        return leased

    def _release_slots(self, lease_ids: list[int]) -> None:
        if lease_ids:
            self._repository.release_leases(lease_ids)

    def _renew_leases(self) -> None:
        now = self._clock()
        if now - self._renewed_at < RENEW_EVERY:
            return
        self._renewed_at = now
        held = self._leases.to_renew()
        if held:
            self._repository.renew_leases(held, LEASE_SECONDS)

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
            longest = longest_call(
                call_timeout(delivery.call, self._call_timeout, delivery.type_defaults)
            )
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

    def _allowed(
        self, route: TaskTypeRoute, wanted: int, schedule: _Schedule, now: float
    ) -> tuple[int, float]:
        """How many messages of `route` may be read now under its global rate limit, and the
        slot their tokens are for (inf: no limit, any time will do)."""
        if route.max_rps is None:
            return wanted, math.inf
        if schedule.reserved:
            # Tokens reserved earlier are due now; what does not fit is dropped:
            # using a token late could bunch sends together. So are all of them
            # if this thread woke past their slot: fresh tokens are taken instead.
            allowed, schedule.reserved = min(schedule.reserved, wanted), 0
            schedule.waiting_for_tokens = False
            if now <= self._send_by(route, schedule.reserved_at, allowed):
                return allowed, schedule.reserved_at
        grant = self._repository.take_tokens(route.task_type, wanted)
        if grant is None:  # the limit was removed since the routes were read
            return wanted, math.inf
        schedule.waiting_for_tokens = grant.granted == 0 or grant.wait_seconds > 0
        if schedule.waiting_for_tokens:
            schedule.reserved = grant.granted
            schedule.next_at = schedule.reserved_at = now + max(grant.wait_seconds, 0.001)
            self._metrics.rate_limited(route.task_type, grant.wait_seconds)
            return 0, math.inf
        return grant.granted, now

    def _send_by(self, route: TaskTypeRoute, slot: float, count: int) -> float:
        """The latest start for `count` calls whose tokens are for `slot`.

        The tokens of one grant fall due over count / rate seconds up to
        `slot`; the calls may take as long to go out (one executor after
        another), plus the margin (RATE_SLOT_MARGIN) for the read and a thread to wake.
        """
        if route.max_rps is None:
            return math.inf
        return slot + count / route.max_rps + self._rate_slot_margin

    def _apply_wakeups(self) -> None:
        woken = self._wakeups.take()
        if not woken:
            return
        if woken.everything:
            # Notifications may have been missed: the due queues say what they announced.
            self._poll_due(force=True)
        if (woken.queues | woken.due.keys()) - self._task_types.keys():
            self._refresh_routes()
        known = self._task_types
        for queue_name in woken.queues:
            if queue_name in known:
                # A type waiting for its next token keeps waiting: new work does not make tokens.
                self._schedules[known[queue_name]].wake_at(0.0)
        for queue_name, at in woken.due.items():
            if queue_name in known:
                schedule = self._schedules[known[queue_name]]
                schedule.retry_due_at = min(schedule.retry_due_at, at)
                schedule.wake_at(at)

    def _pause(self, out_of_room: bool) -> None:
        """Sleep until a type is due, new work is announced, or (when full) room frees up."""
        now = self._clock()
        due = min((s.next_at for s in self._schedules.values()), default=self._due_poll_at)
        timeout = min(max(min(due, self._due_poll_at) - now, 0.0), self._due_poll_every)
        if timeout <= 0 and not out_of_room:
            return
        if out_of_room:
            self._dispatcher.wait_for_room(timeout or DUE_NOW_DELAY)
        else:
            self._wakeups.wait(timeout)
