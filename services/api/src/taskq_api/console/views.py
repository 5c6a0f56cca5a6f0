"""Figures shaped for the console's templates: overview rows and their outcome charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from taskq_core.operation_models import TaskTypeFigures
from taskq_core.repository.console import OutcomeCount

CHART_MINUTES = 15
"""How far back the overview's success/failure chart goes."""
DATA_PREVIEW = 300
"""Characters of a payload shown in a table cell; the task page shows it whole."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the chart: successes up, failures down, both scaled to 0..1."""

    minutes_ago: int
    success: int
    failed: int
    success_height: float
    failed_height: float


@dataclass(frozen=True, slots=True)
class OverviewRow:
    figures: TaskTypeFigures
    bars: list[Bar]
    success_total: int
    failed_total: int

    @property
    def rate_share(self) -> float | None:
        """Effective rate as a share of max_rps (None when unlimited)."""
        if not self.figures.max_rps:
            return None
        return min(self.figures.effective_rps / self.figures.max_rps, 1.0)


def overview_rows(
    figures: Sequence[TaskTypeFigures], outcomes: Sequence[OutcomeCount]
) -> list[OverviewRow]:
    counts: dict[tuple[str, str, int], int] = {
        (outcome.task_type, outcome.status, outcome.minutes_ago): outcome.messages
        for outcome in outcomes
    }
    rows = []
    for figure in figures:
        minutes = range(CHART_MINUTES - 1, -1, -1)
        success = [counts.get((figure.task_type, "success", minute), 0) for minute in minutes]
        failed = [counts.get((figure.task_type, "failed", minute), 0) for minute in minutes]
        peak = max([*success, *failed, 1])
        bars = [
            Bar(minute, ok, bad, ok / peak, bad / peak)
            for minute, ok, bad in zip(minutes, success, failed, strict=True)
        ]
        rows.append(OverviewRow(figure, bars, sum(success), sum(failed)))
    return rows


def pretty_json(value: Any, *, limit: int | None = None) -> str:
    """JSON for a cell (cut at `limit`) or a block; payloads come from the database raw."""
    encoded = bytes(value) if isinstance(value, msgspec.Raw) else msgspec.json.encode(value)
    text = msgspec.json.format(encoded, indent=0 if limit else 2).decode()
    if limit is not None and len(text) > limit:
        return text[:limit] + "…"
    return text


def age(seconds: float) -> str:
    """A short human age: 42s, 3m 5s, 2h 10m, 3d 4h."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    if whole < 86_400:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86_400}d {whole % 86_400 // 3600}h"
