"""A target's rate-limit headers, read as "this many calls left until then" (pacing, issue 16).

Three forms are in use:
- the IETF httpapi draft's structured fields (draft 07 on):
  `RateLimit: "default";r=50;t=30` with `RateLimit-Policy: "default";q=100;w=60`;
- its earlier drafts: `RateLimit: limit=100, remaining=50, reset=30`, or the
  separate `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset`;
- the common `X-RateLimit-Remaining` + `X-RateLimit-Reset`, whose reset is
  seconds from now or a Unix time (told apart by size).

Parsing fails closed: a value that is not a plain non-negative number in
range, or a header too long to be honest, is ignored as if absent. Nothing a
target sends can raise a rate (pacing only lowers it, under max_rps) or crash
a worker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_HEADER_CHARS = 1024  # longer values are ignored: no honest rate-limit header needs more
MAX_REMAINING = 1_000_000_000
MAX_RESET_SECONDS = 86_400.0 * 7  # a week: the longest window in use is a day
# X-RateLimit-Reset values from here up are Unix times (2001-09-09 on); a
# seconds-from-now reset is never that large (MAX_RESET_SECONDS).
EPOCH_FROM = 1_000_000_000.0

_INTEGER = re.compile(r"[0-9]{1,15}")
_NUMBER = re.compile(r"[0-9]{1,15}(\.[0-9]{1,9})?")


@dataclass(frozen=True, slots=True)
class Budget:
    """`remaining` calls allowed in the next `reset` seconds (then the target renews its quota)."""

    remaining: int
    reset: float


def parse_budget(
    headers: Mapping[str, str],
    *,
    now: Callable[[], float],
    longest_pause: float = MAX_RESET_SECONDS,
) -> Budget | None:
    """The tightest budget the headers state, or None when they state none (or only garbage).

    `headers` must look names up without case (requests' headers do); `now`
    gives the Unix time, read only for an X-RateLimit-Reset that is one. A
    budget of nothing stops the type until the reset: no longer than
    `longest_pause` (MAX_SNOOZE_DELAY, as for a Retry-After).
    """
    # Every form's names contain "ratelimit"; most replies carry none. One pass
    # over the names costs less than the seven lookups that would all miss.
    if not any("ratelimit" in name.lower() for name in headers):
        return None
    budgets = [
        budget
        for budget in (
            _structured(headers.get("RateLimit"), headers.get("RateLimit-Policy")),
            _dictionary(headers.get("RateLimit")),
            _pair(headers.get("RateLimit-Remaining"), headers.get("RateLimit-Reset"), None),
            _pair(headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset"), now),
        )
        if budget is not None
    ]
    if not budgets:
        return None
    tightest = min(budgets, key=_rate)
    if tightest.remaining == 0 and tightest.reset > longest_pause:
        return Budget(0, longest_pause)
    return tightest


def _rate(budget: Budget) -> float:
    return budget.remaining / max(budget.reset, 1.0)


def _structured(value: str | None, policy: str | None) -> Budget | None:
    """`"name";r=R;t=T` items (several: the tightest); without t, the policy's window w."""
    if value is None or not _fits(value) or ";" not in value:
        return None
    windows = _policy_windows(policy)
    found = []
    for item in value.split(","):
        name, _, rest = item.strip().partition(";")
        params = _params(rest, ";")
        if params is None or "r" not in params:
            continue
        remaining = _integer(params["r"])
        reset = _integer(params["t"]) if "t" in params else windows.get(name.strip())
        if remaining is not None and reset is not None and reset <= MAX_RESET_SECONDS:
            found.append(Budget(remaining, float(reset)))
    return min(found, key=_rate) if found else None


def _policy_windows(policy: str | None) -> dict[str, int]:
    if policy is None or not _fits(policy):
        return {}
    windows = {}
    for item in policy.split(","):
        name, _, rest = item.strip().partition(";")
        params = _params(rest, ";")
        window = None if params is None else _integer(params.get("w", ""))
        if window is not None:
            windows[name.strip()] = window
    return windows


def _dictionary(value: str | None) -> Budget | None:
    """The earlier drafts' `limit=100, remaining=50, reset=30`."""
    if value is None or not _fits(value) or ";" in value:
        return None
    params = _params(value, ",")
    if params is None or "remaining" not in params or "reset" not in params:
        return None
    return _budget(params["remaining"], params["reset"], None)


def _pair(
    remaining: str | None, reset: str | None, now: Callable[[], float] | None
) -> Budget | None:
    """Two headers; the first list member counts (`RateLimit-Remaining: 50, 100;w=60`)."""
    if remaining is None or reset is None or not (_fits(remaining) and _fits(reset)):
        return None
    return _budget(remaining.split(",")[0].split(";")[0], reset.split(",")[0].split(";")[0], now)


def _budget(remaining: str, reset: str, now: Callable[[], float] | None) -> Budget | None:
    calls = _integer(remaining)
    seconds = _number(reset) if now is not None else _integer(reset)
    if calls is None or seconds is None:
        return None
    if now is not None and seconds >= EPOCH_FROM:
        seconds = max(seconds - now(), 0.0)
    if seconds > MAX_RESET_SECONDS:
        return None
    return Budget(calls, float(seconds))


def _params(text: str, separator: str) -> dict[str, str] | None:
    """`a=1<sep>b=2` as a dict; None when a part is not name=value (the header is garbage)."""
    params = {}
    for raw in text.split(separator):
        part = raw.strip()
        if not part:
            continue
        name, equals, value = part.partition("=")
        if not equals:
            return None
        params[name.strip().lower()] = value.strip().strip('"')
    return params


def _integer(text: str) -> int | None:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_REMAINING else None


def _number(text: str) -> float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _fits(value: str) -> bool:
    return 0 < len(value) <= MAX_HEADER_CHARS
