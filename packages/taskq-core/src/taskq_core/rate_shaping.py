"""What a batch of outcomes tells the shared bucket about each task type's rate (issue 16).

Pacing: per type, the tightest budget its target's rate-limit headers stated
(fewest calls per second left). Adaptive types: how many calls succeeded and
how many the target throttled (429, 503). The database turns these into the
rate every replica sends at (taskq.observe_rates, migration 0013); a type with
neither is left out, so most batches add no statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taskq_core.deliveries import Failed, RetryLater, Snoozed, Succeeded
from taskq_core.rate_headers import Budget

THROTTLING_STATUSES = frozenset({429, 503})


@dataclass(slots=True)
class _Seen:
    budget: Budget | None = None
    successes: int = 0
    throttled: int = 0


def rate_observations(
    outcomes: Sequence[Succeeded | RetryLater | Snoozed | Failed],
) -> dict[str, object] | None:
    """The parameters of the observe_rates statement, or None when there is nothing to tell."""
    seen: dict[str, _Seen] = {}
    for outcome in outcomes:
        delivery = outcome.delivery
        budget = outcome.budget
        if budget is None and not delivery.adaptive:
            continue
        entry = seen.setdefault(delivery.task_type, _Seen())
        if budget is not None and (entry.budget is None or _tighter(budget, entry.budget)):
            entry.budget = budget
        if delivery.adaptive:
            if isinstance(outcome, Succeeded):
                entry.successes += 1
            elif outcome.http_status in THROTTLING_STATUSES:
                entry.throttled += 1
    if not seen:
        return None
    types = sorted(seen)
    return {
        "task_types": types,
        "remaining": [_remaining(seen[name].budget) for name in types],
        "resets": [_reset(seen[name].budget) for name in types],
        "successes": [seen[name].successes for name in types],
        "throttled": [seen[name].throttled for name in types],
    }


def _tighter(budget: Budget, than: Budget) -> bool:
    return budget.remaining / max(budget.reset, 1.0) < than.remaining / max(than.reset, 1.0)


def _remaining(budget: Budget | None) -> float | None:
    return None if budget is None else float(budget.remaining)


def _reset(budget: Budget | None) -> float | None:
    return None if budget is None else budget.reset
