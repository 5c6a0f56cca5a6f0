"""Pure arithmetic of the suite: percentiles, rates and 1-second windows."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def max_in_window(timestamps: Sequence[float], window: float = 1.0) -> int:
    """The largest number of timestamps inside any half-open interval [t, t + window)."""
    ordered = sorted(timestamps)
    best = 0
    start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def between(timestamps: Sequence[float], start: float, stop: float) -> list[float]:
    """The timestamps in [start, stop)."""
    return [stamp for stamp in timestamps if start <= stamp < stop]


def rate(count: int, seconds: float) -> float:
    """count / seconds, NaN when no time passed."""
    return count / seconds if seconds > 0 else math.nan


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0 or math.isnan(baseline):
        return None
    if math.isnan(value):
        return None
    return value / baseline
