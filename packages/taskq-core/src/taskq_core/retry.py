"""The retry policy: which failures are retried and how long to wait before the next attempt.

Pure functions of their inputs (the random source is passed in) so they are
tested without a database or a clock. Modelled on River's NextRetryAt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS_CODES = frozenset({408, 425, 429})
RETRY_AFTER_STATUS_CODES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from `base_delay`, capped at `max_delay`, after at most `max_retries`."""

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.2


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
