"""The retry policy: the one owner of "succeed, retry after D, snooze, or fail" for an attempt.

`RetryPolicy.decide` takes what happened on an attempt (an HTTP status, or the
kind of error that left no answer) and the attempt number, and returns the
decision; the worker only maps exceptions to an `ErrorKind` and the decision
to an outcome. Pure functions of their inputs (the random source is passed in)
so they are tested without a database or a clock. Modelled on River's
ClientRetryPolicy.NextRetry and procrastinate's RetryStrategy.get_retry_decision.

A rate-limit answer (429, or 503 with Retry-After) is not a failure (design
decision 11): the message is snoozed until the time the target asked for,
without spending an attempt; snoozes have a cap of their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRYABLE_STATUS_CODES = frozenset({408, 425, 429})
RETRY_AFTER_STATUS_CODES = frozenset({429, 503})


class ErrorKind(StrEnum):
    """Why an attempt got no answer."""

    TIMEOUT = "timeout"  # the target did not answer in time
    CONNECTION = "connection"  # refused, reset, DNS failure: the target may come back
    TRANSPORT = "transport"  # another error of the HTTP client while sending
    INVALID_REQUEST = "invalid request"  # the call itself is malformed: sending again cannot help
    EGRESS_REFUSED = "egress refused"  # the egress policy forbids the target
    WORKER_ERROR = "worker error"  # taskq failed while handling the message (design decision 8)


# Retried, each retry spending an attempt. A worker error counts too: if it is
# a bug in one message's handling, the message ends in the DLQ, never loops.
_RETRYABLE_ERRORS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.TRANSPORT, ErrorKind.WORKER_ERROR}
)


@dataclass(frozen=True, slots=True)
class Happened:
    """What one attempt came to: an HTTP answer, or an error that left none."""

    http_status: int | None = None
    error: ErrorKind | None = None
    retry_after: float | None = None  # seconds the answer's Retry-After asked for


@dataclass(frozen=True, slots=True)
class Succeed:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float  # seconds the message stays hidden before the next attempt


@dataclass(frozen=True, slots=True)
class Snooze:
    """The target asked for time: wait `delay` seconds, the whole type with it; no attempt spent."""

    delay: float


@dataclass(frozen=True, slots=True)
class Fail:
    exhausted: bool  # True: retryable, but the attempts (or snoozes) ran out; False: permanent
    snoozes_exhausted: bool = False  # the target kept answering "later" MAX_SNOOZES times


Decision = Succeed | Retry | Snooze | Fail


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from `base_delay`, capped at `max_delay`, after at most `max_retries`."""

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.2
    max_snoozes: int = 20
    # A target's Retry-After is honoured up to this: a hostile or broken one
    # cannot park a type for days.
    max_snooze_delay: float = 3600.0
    # The HTTP statuses retried (a task type's own list); None: 5xx, 408, 425 and 429.
    retryable_statuses: frozenset[int] | None = None

    def decide(
        self, attempt: int, happened: Happened, *, snoozes: int = 0, rng: random.Random
    ) -> Decision:
        """What to do now that attempt `attempt` (0-based, just run) came to `happened`.

        `snoozes` is how many times the message was snoozed already.
        """
        status = happened.http_status
        if status is not None and 200 <= status < 300:
            return Succeed()
        retryable = (
            self.retries_status(status)
            if status is not None
            else happened.error in _RETRYABLE_ERRORS
        )
        if not retryable:
            return Fail(exhausted=False)
        if is_rate_limited(happened):
            if snoozes >= self.max_snoozes:
                return Fail(exhausted=True, snoozes_exhausted=True)
            return Snooze(self.snooze_delay(snoozes, happened.retry_after, rng=rng))
        if attempt >= self.max_retries:
            return Fail(exhausted=True)
        # Only the statuses that define Retry-After are trusted with it.
        retry_after = happened.retry_after if status in RETRY_AFTER_STATUS_CODES else None
        return Retry(next_delay(attempt + 1, self, retry_after=retry_after, rng=rng))

    def retries_status(self, status_code: int) -> bool:
        """Whether an answer with this status is tried again (or, when rate-limited, snoozed)."""
        if self.retryable_statuses is not None:
            return status_code in self.retryable_statuses
        return is_retryable_status(status_code)

    def snooze_delay(self, snoozes: int, retry_after: float | None, *, rng: random.Random) -> float:
        """Seconds to snooze: what the target asked for, else the backoff by snooze count."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_snooze_delay)
        return next_delay(snoozes + 1, self, rng=rng)


def is_rate_limited(happened: Happened) -> bool:
    """A 429, or a 503 that says when to come back: the target asks for time, not a retry."""
    status = happened.http_status
    return status == 429 or (status == 503 and happened.retry_after is not None)


def is_retryable_status(status_code: int) -> bool:
    """5xx and the 4xx that mean "not now" (timeout, too early, too many requests) are retried."""
    return status_code >= 500 or status_code in RETRYABLE_STATUS_CODES


def next_delay(
    attempt: int,
    policy: RetryPolicy,
    *,
    retry_after: float | None = None,
    rng: random.Random,
) -> float:
    """Seconds to wait before attempt `attempt + 1`, after `attempt` (1-based) attempts failed.

    A target's Retry-After wins over the computed delay (it knows its own
    recovery time) but is still capped, so a hostile target cannot park a
    message for days. Jitter spreads a burst of failures so the retries do not
    arrive together; it only shortens the delay, so the cap holds.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_delay)
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 seconds overflows nothing and is capped anyway
    delay = min(policy.base_delay * (2.0**exponent), policy.max_delay)
    return delay * (1.0 - policy.jitter * rng.random())


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from `now` that a Retry-After header asks for (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)
