from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from taskq_core.retry import RetryPolicy, is_retryable_status, next_delay, parse_retry_after

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
