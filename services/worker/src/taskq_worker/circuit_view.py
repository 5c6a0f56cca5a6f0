"""This process's view of the per-host circuit breakers, and what it does to a message.

The breakers live in PostgreSQL (taskq_core.repository.circuits), shared by
every replica. Each process keeps the hosts that are not closed in memory,
refreshed by the recorder with every outcome write (the same statement), and
re-read before a call when it is older than a second (after an idle spell: an
idle worker reads nothing), so checking a message rarely costs a round trip.
Only a host past its cool-down costs one: a probe is claimed in the database
(BREAKER_PROBES at a time across every worker).

A message whose host is open is snoozed, not called: no attempt is spent, its
snooze count grows (MAX_SNOOZES still ends it in the DLQ), and its task type
goes on with its other hosts.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loguru import logger

from taskq_core.circuits import BreakerPolicy, CircuitState, counts_as, host_key
from taskq_core.deliveries import Delivery, Failed, Outcome, Snoozed
from taskq_core.errors import DatabaseError
from taskq_core.repository.circuits import CircuitRepository, HostCalls, HostState, HostTally
from taskq_core.status import TaskStatus

REFRESH_SECONDS = 1.0  # a view older than this is re-read before a call
# While other workers' probes run, this process's messages for the host wait
# this long before asking again (at most the cool-down).
PROBE_WAIT_SECONDS = 2.0
# Spread of the waits, so a host's backlog does not come back all at once.
JITTER_SECONDS = 1.0


@dataclass(slots=True)
class _Host:
    state: CircuitState
    until: float  # monotonic: while open, when probing may start
    recheck_at: float = 0.0  # monotonic: after a probe was refused, when to ask again


class CircuitView:
    def __init__(
        self,
        repository: CircuitRepository,
        policy: BreakerPolicy,
        *,
        max_snoozes: int,
        max_snooze_delay: float,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._repository = repository
        self._policy = policy
        self._max_snoozes = max_snoozes
        self._max_snooze_delay = max_snooze_delay
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._refreshed_at = -math.inf

    def hold(self, delivery: Delivery) -> Snoozed | Failed | None:
        """The outcome of a message whose host may not be called now; None: call it."""
        host = self._watched_host(delivery)
        if host is None:
            return None
        now = self._clock()
        with self._lock:
            entry = self._hosts.get(host)
            if entry is None:
                return None
            if entry.state is CircuitState.OPEN and now < entry.until:
                return self._snooze(delivery, host, entry.until - now)
            if now < entry.recheck_at:
                return self._snooze(delivery, host, entry.recheck_at - now)
        return self._probe(delivery, host, now)

    def _watched_host(self, delivery: Delivery) -> str | None:
        """The host of a message that is to be called, if the view holds any host at all."""
        if delivery.status is not TaskStatus.PENDING or delivery.call is None:
            return None  # dropped or failed without a call, never snoozed
        if self._clock() - self._refreshed_at >= REFRESH_SECONDS:
            self._look_again()
        if not self._hosts:  # no lock: a stale empty view is at most a second old
            return None
        return _host_of(delivery.call.url)

    def host_calls(self, batch: Sequence[Outcome]) -> HostCalls | None:
        """The statement adding `batch`'s calls to the breakers (None: it made none), for the
        recorder to run in the batch's own transaction; `written` then takes the answer."""
        tallies = _tally(batch)
        return self._repository.host_calls(tallies) if tallies else None

    def written(self, states: list[HostState] | None) -> None:
        """The hosts not closed after the recorder's write of a batch's calls."""
        if states is not None:
            self._replace(states)

    def record(self, batch: Sequence[Outcome]) -> None:
        """The recorder wrote `batch` alone: add its calls to the breakers and refresh the view."""
        tallies = _tally(batch)
        try:
            if tallies:
                self._replace(self._repository.record(tallies))
            else:
                self.refresh_if_due()
        except DatabaseError as error:
            # The breaker advises; losing one batch's counts only delays an opening.
            logger.warning("host circuit breakers not updated: {}", error)

    def refresh_if_due(self) -> None:
        if self._clock() - self._refreshed_at >= REFRESH_SECONDS:
            self._replace(self._repository.not_closed())

    def _look_again(self) -> None:
        """Re-read a view older than REFRESH_SECONDS before a call (after an idle spell,
        or this process's first call); one thread reads, the others wait for it.

        Busy, the recorder's writes keep the view fresh; idle, nothing is read at all.
        """
        with self._refreshing:
            try:
                self.refresh_if_due()
            except DatabaseError as error:
                # Keep the view for another second rather than make every call wait
                # for a database that is away.
                self._refreshed_at = self._clock()
                logger.debug("host circuit breakers not re-read: {}", error)

    def _probe(self, delivery: Delivery, host: str, now: float) -> Snoozed | Failed | None:
        """The host's cool-down is over: call it if a probe is ours, else wait for the probes."""
        try:
            claim = self._repository.claim_probe(host)
        except DatabaseError as error:
            logger.debug("probe of host {} not claimed: {}", host, error)
            return self._snooze(delivery, host, self._probe_wait())
        with self._lock:
            self._apply(claim.state, now)
            if claim.granted:
                return None
            entry = self._hosts.get(host)
            if entry is None:
                return None
            if entry.state is CircuitState.OPEN and now < entry.until:
                return self._snooze(delivery, host, entry.until - now)
            entry.recheck_at = now + self._probe_wait()
            return self._snooze(delivery, host, entry.recheck_at - now)

    def _snooze(self, delivery: Delivery, host: str, wait: float) -> Snoozed | Failed:
        reason = f"host {host}: circuit breaker open"
        if delivery.snoozes >= self._max_snoozes:
            return Failed(
                delivery,
                f"{reason}, still after {delivery.snoozes} snoozes (MAX_SNOOZES)",
                None,
                0.0,
                exhausted=True,
            )
        delay = wait + self._rng.uniform(0.0, min(JITTER_SECONDS, self._policy.cooldown / 10))
        delay = min(max(delay, 0.0), self._max_snooze_delay)
        return Snoozed(delivery, reason, None, 0.0, delay, circuit_open=True)

    def _probe_wait(self) -> float:
        return min(PROBE_WAIT_SECONDS, self._policy.cooldown)

    def _replace(self, states: list[HostState]) -> None:
        now = self._clock()
        with self._lock:
            before = self._hosts
            self._hosts = {}
            for state in states:
                previous = before.get(state.host)
                self._hosts[state.host] = _Host(
                    state.state,
                    now + state.open_for,
                    previous.recheck_at if previous is not None else 0.0,
                )
                if state.state is CircuitState.OPEN and (
                    previous is None or previous.state is not CircuitState.OPEN
                ):
                    logger.warning(
                        "host {} circuit breaker open: its calls wait {:.1f} s, then probes",
                        state.host,
                        state.open_for,
                    )
            for host in before.keys() - self._hosts.keys():
                logger.info("host {} circuit breaker closed: its calls resume", host)
            self._refreshed_at = now

    def _apply(self, state: HostState, now: float) -> None:
        """One host's state as a probe claim found it (lock held)."""
        if state.state is CircuitState.CLOSED:
            self._hosts.pop(state.host, None)
            return
        entry = self._hosts.get(state.host)
        if entry is None:
            self._hosts[state.host] = _Host(state.state, now + state.open_for)
        else:
            entry.state, entry.until = state.state, now + state.open_for


@functools.lru_cache(maxsize=4096)
def _host_of(url: str) -> str | None:
    return host_key(url)


def _tally(batch: Sequence[Outcome]) -> dict[str, HostTally]:
    calls: dict[str, int] = defaultdict(int)
    failures: dict[str, int] = defaultdict(int)
    for outcome in batch:
        failed = counts_as(outcome)
        call = outcome.delivery.call
        if failed is None or call is None:
            continue
        host = _host_of(call.url)
        if host is None:
            continue
        calls[host] += 1
        failures[host] += failed
    return {host: HostTally(count, failures[host]) for host, count in calls.items()}
