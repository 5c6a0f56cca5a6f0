"""Go-style duration strings ("1500ms", "30s", "2m30s"), as the reference's settings use."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    # Not Go's, but retention periods are counted in days (STATUS_RETENTION=7d).
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse_duration(text: str) -> float:
    """Return the duration in seconds.

    Accepts Go's `time.ParseDuration` syntax and, as a convenience, a bare
    number of seconds ("30"). Negative durations are rejected: none of taskq's
    settings has a meaning for them.
    """
    value = text.strip()
    if _NUMBER.fullmatch(value):
        return _finite(float(value), text)
    position = 0
    total = 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(value) or not value:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 30s, 2m)")
    return _finite(total, text)


def _finite(seconds: float, text: str) -> float:
    # Hundreds of digits parse as float infinity, which no later arithmetic survives.
    if not math.isfinite(seconds):
        raise ValueError(f"duration {text[:40]!r}... is too large")
    return seconds
