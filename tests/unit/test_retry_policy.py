from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from taskq_core.call_limits import call_timeout, longest_call
from taskq_core.models import QueuedCall
from taskq_core.retry import (
    Decision,
    ErrorKind,
    Fail,
    Happened,
    Retry,
    RetryPolicy,
    Snooze,
    Succeed,
    is_retryable_status,
    next_delay,
    parse_retry_after,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def test_backoff_is_exponential_from_the_base() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.0)
    delays = [next_delay(attempt, policy, rng=random.Random(1)) for attempt in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.0)
    assert next_delay(10, policy, rng=random.Random(1)) == 60.0
    assert next_delay(10_000, policy, rng=random.Random(1)) == 60.0


def test_jitter_only_shortens_and_varies() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.2)
    rng = random.Random(7)
    delays = {next_delay(3, policy, rng=rng) for _ in range(50)}
    assert all(3.2 <= delay <= 4.0 for delay in delays)
    assert len(delays) > 40


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    rng = random.Random(1)
    assert next_delay(1, policy, retry_after=7.0, rng=rng) == 7.0
    assert next_delay(1, policy, retry_after=3600.0, rng=rng) == 30.0
    assert next_delay(1, policy, retry_after=-5.0, rng=rng) == 0.0


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120", now=NOW) == 120.0
    later = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=NOW) == pytest.approx(90.0)
    earlier = (NOW - timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(earlier, now=NOW) == 0.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (408, True),
        (425, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (409, False),
        (422, False),
        (301, False),
    ],
)
def test_which_statuses_are_retried(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


# The whole decision, as a table: what happened on attempt `attempt` (0-based)
# of a call allowed 3 retries -> succeed, retry after D seconds, snooze, or fail.
_POLICY = RetryPolicy(
    max_retries=3, base_delay=1.0, max_delay=30.0, jitter=0.0, max_snoozes=2, max_snooze_delay=600.0
)


@pytest.mark.parametrize(
    ("attempt", "happened", "decision"),
    [
        (0, Happened(http_status=200), Succeed()),
        (3, Happened(http_status=204), Succeed()),
        (0, Happened(http_status=500), Retry(1.0)),
        (2, Happened(http_status=503), Retry(4.0)),
        (3, Happened(http_status=503), Fail(exhausted=True)),
        (0, Happened(http_status=404), Fail(exhausted=False)),
        (0, Happened(http_status=301), Fail(exhausted=False)),
        # A rate-limit answer snoozes (design decision 11): no attempt spent, even
        # the last one; Retry-After is honoured up to max_snooze_delay.
        (0, Happened(http_status=429, retry_after=7.0), Snooze(7.0)),
        (3, Happened(http_status=429, retry_after=7.0), Snooze(7.0)),
        (0, Happened(http_status=429), Snooze(1.0)),
        (0, Happened(http_status=503, retry_after=3600.0), Snooze(600.0)),
        (0, Happened(http_status=503, retry_after=0.0), Snooze(0.0)),
        # Retry-After is only trusted on the statuses that define it.
        (0, Happened(http_status=500, retry_after=20.0), Retry(1.0)),
        (1, Happened(error=ErrorKind.TIMEOUT), Retry(2.0)),
        (1, Happened(error=ErrorKind.CONNECTION), Retry(2.0)),
        (0, Happened(error=ErrorKind.TRANSPORT), Retry(1.0)),
        (3, Happened(error=ErrorKind.TIMEOUT), Fail(exhausted=True)),
        (0, Happened(error=ErrorKind.INVALID_REQUEST), Fail(exhausted=False)),
        (0, Happened(error=ErrorKind.EGRESS_REFUSED), Fail(exhausted=False)),
        # A failure inside taskq spends attempts and ends (design decision 8).
        (0, Happened(error=ErrorKind.WORKER_ERROR), Retry(1.0)),
        (3, Happened(error=ErrorKind.WORKER_ERROR), Fail(exhausted=True)),
    ],
)
def test_the_policy_decides_every_attempt(
    attempt: int, happened: Happened, decision: Decision
) -> None:
    assert _POLICY.decide(attempt, happened, rng=random.Random(1)) == decision


@pytest.mark.parametrize(
    ("snoozes", "happened", "decision"),
    [
        (1, Happened(http_status=429), Snooze(2.0)),  # backoff by snooze count
        (1, Happened(http_status=429, retry_after=5.0), Snooze(5.0)),
        (
            2,
            Happened(http_status=429, retry_after=5.0),
            Fail(exhausted=True, snoozes_exhausted=True),
        ),
        (
            2,
            Happened(http_status=503, retry_after=5.0),
            Fail(exhausted=True, snoozes_exhausted=True),
        ),
        # Snoozes do not limit the other failures, nor attempts the snoozes.
        (2, Happened(http_status=503), Retry(1.0)),
    ],
)
def test_snoozes_have_a_cap_of_their_own(
    snoozes: int, happened: Happened, decision: Decision
) -> None:
    assert _POLICY.decide(0, happened, snoozes=snoozes, rng=random.Random(1)) == decision


def test_no_retries_means_the_first_retryable_failure_is_final() -> None:
    policy = RetryPolicy(max_retries=0)
    assert policy.decide(0, Happened(http_status=500), rng=random.Random(1)) == Fail(exhausted=True)


@pytest.mark.parametrize(
    ("timeout_ms", "default", "timeout", "longest"),
    [(None, 5.0, 5.0, 10.0), (1500, 5.0, 1.5, 3.0), (None, 0.25, 0.25, 0.5)],
)
def test_how_long_a_call_can_take(
    timeout_ms: int | None, default: float, timeout: float, longest: float
) -> None:
    call = QueuedCall(
        task_id="t",
        payload_id=0,
        task_type="x",
        url="http://x",
        method="POST",
        timeout_ms=timeout_ms,
    )
    assert call_timeout(call, default) == timeout
    assert call_timeout(None, default) == default
    assert longest_call(timeout) == longest
