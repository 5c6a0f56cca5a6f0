"""What a worker holds while it makes one call, and what came of it.

These values cross the boundary between the worker's threads and the
repository, so they live in core and carry no I/O. `outcome_for` turns the
retry policy's decision about an attempt into the outcome that is recorded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import assert_never

from taskq_core.capture import CapturedResponse
from taskq_core.models import DeliveryDefaults, QueuedCall
from taskq_core.rate_headers import Budget
from taskq_core.retry import Fail, Happened, Retry, RetryPolicy, Snooze, Succeed
from taskq_core.status import TaskStatus

_NO_DEFAULTS = DeliveryDefaults()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message read from a task type's queue.

    `attempt` is the 0-based index of the attempt about to run (the status
    row's `attempt`). `raw` is the message text as stored, forwarded unchanged
    to the DLQ. `call` is None when the message could not be decoded.
    """

    queue_name: str
    message_id: int
    task_type: str
    raw: str
    call: QueuedCall | None
    attempt: int
    status: TaskStatus
    snoozes: int = 0  # times the target asked for time (429): attempts not spent
    # The task type's defaults (POST /task-types) when it was read: the batch's
    # own fields win over them, and they over the worker's settings.
    type_defaults: DeliveryDefaults = _NO_DEFAULTS
    # The concurrency slot (lease) this call holds when its type has max_concurrency.
    lease_id: int | None = None
    # time.monotonic() at which the queue shows the message again unless it is
    # finished first: a call that could run past it must not start.
    hidden_until: float = 0.0
    # The type's signing secrets (X-Taskq-Signature); () unsigned; None: the type
    # has secrets this worker cannot decrypt, so the call must not go out unsigned.
    signing_keys: tuple[bytes, ...] | None = ()
    # The type's rate follows its 429/503s and successes (AIMD, migration 0013).
    adaptive: bool = False
    # time.monotonic() by which the call must start for its rate token to be
    # spent in its slot (inf: the type has no rate limit). A call that starts
    # later would go out bunched with calls whose slots are current.
    send_by: float = math.inf


@dataclass(frozen=True, slots=True)
class Succeeded:
    delivery: Delivery
    http_status: int
    duration_ms: float
    response: CapturedResponse | None = None
    budget: Budget | None = None  # what the target's rate-limit headers said (pacing)


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The call failed in a way worth repeating; the message stays hidden for `delay` seconds."""

    delivery: Delivery
    error: str
    http_status: int | None
    duration_ms: float
    delay: float
    response: CapturedResponse | None = None
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class Snoozed:
    """The target asked for time: the message and its task type wait `delay` seconds.

    No attempt is spent; the message's snooze count grows instead.
    `circuit_open`: no call was made, the target's host circuit breaker is
    open; only the message waits, not its type (other hosts keep flowing).
    """

    delivery: Delivery
    error: str
    http_status: int | None
    duration_ms: float
    delay: float
    response: CapturedResponse | None = None
    budget: Budget | None = None
    circuit_open: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """Permanent failure or attempts exhausted: the message moves to the DLQ."""

    delivery: Delivery
    error: str
    http_status: int | None
    duration_ms: float
    exhausted: bool = False  # retries ran out, rather than a permanent failure
    response: CapturedResponse | None = None
    rate_limited: bool = False  # the snoozes ran out: the target kept answering 429
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class Dropped:
    """The status was already final (a duplicate after a crash): only the message goes."""

    delivery: Delivery


Outcome = Succeeded | RetryLater | Snoozed | Failed | Dropped


def outcome_for(
    delivery: Delivery,
    policy: RetryPolicy,
    happened: Happened,
    *,
    reason: str,
    duration_ms: float,
    rng: random.Random,
    response: CapturedResponse | None = None,
    budget: Budget | None = None,
) -> Succeeded | RetryLater | Snoozed | Failed:
    """What becomes of `delivery` after an attempt that came to `happened` (`reason` says why).

    `response`: the kept start of the reply (response capture), whatever the outcome;
    `budget`: what its rate-limit headers said, for pacing.
    """
    status = happened.http_status
    decision = policy.decide(delivery.attempt, happened, snoozes=delivery.snoozes, rng=rng)
    match decision:
        case Succeed():
            assert status is not None  # only an answer succeeds
            return Succeeded(delivery, status, duration_ms, response, budget=budget)
        case Retry(delay=delay):
            return RetryLater(delivery, reason, status, duration_ms, delay, response, budget=budget)
        case Snooze(delay=delay):
            return Snoozed(delivery, reason, status, duration_ms, delay, response, budget=budget)
        case Fail(snoozes_exhausted=True):
            error = (
                f"{reason}: rate limited, the target still asked for time after "
                f"{delivery.snoozes} snoozes (MAX_SNOOZES)"
            )
            return Failed(
                delivery,
                error,
                status,
                duration_ms,
                exhausted=True,
                response=response,
                rate_limited=True,
                budget=budget,
            )
        case Fail(exhausted=True):
            attempts = delivery.attempt + 1
            error = f"{reason} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
            return Failed(
                delivery,
                error,
                status,
                duration_ms,
                exhausted=True,
                response=response,
                budget=budget,
            )
        case Fail():
            return Failed(delivery, reason, status, duration_ms, response=response, budget=budget)
        case _:
            assert_never(decision)


@dataclass(frozen=True, slots=True)
class TaskTypeRoute:
    """Where a type's messages wait, how fast they may go (None: unlimited), its defaults."""

    task_type: str
    queue_name: str
    max_rps: float | None
    paused: bool = False  # POST /task-types/{t}/pause: nothing is read until resumed
    defaults: DeliveryDefaults = _NO_DEFAULTS
    max_concurrency: int | None = None  # calls in flight across every replica; None: no limit
    signing_keys: tuple[bytes, ...] | None = ()  # as Delivery.signing_keys
    adaptive: bool = False  # as Delivery.adaptive


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """Messages read from one queue; when the read found the queue dry, when it is next due.

    `dry` is False for a full read (more may be waiting). For a dry queue,
    `due_in` is the seconds until its next message becomes visible (None: empty).
    """

    deliveries: list[Delivery]
    dry: bool
    due_in: float | None


@dataclass(frozen=True, slots=True)
class DueQueue:
    """A queue with a message visible in `due_in` seconds (zero or less: now)."""

    queue_name: str
    due_in: float


@dataclass(frozen=True, slots=True)
class TaskTypesVersion:
    """Changes whenever a task type is added or its limit changes."""

    types: int
    changed_at: float


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """Tokens reserved from a type's shared bucket and the seconds until they may be used.

    With nothing granted, `wait_seconds` is how long until a reservation can succeed.
    """

    granted: int
    wait_seconds: float
