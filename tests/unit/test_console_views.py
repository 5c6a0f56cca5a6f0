"""The console's view helpers: chart scaling, ages, JSON cells."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from taskq_api.console.views import CHART_MINUTES, age, overview_rows, pretty_json
from taskq_core.operation_models import TaskTypeFigures
from taskq_core.repository.console import OutcomeCount

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def figures(task_type: str, max_rps: float | None, effective_rps: float) -> TaskTypeFigures:
    return TaskTypeFigures(
        task_type=task_type, max_rps=max_rps, paused=False, created_at=NOW, updated_at=NOW,
        backlog=0, visible=0, in_flight=0, retrying=0, oldest_age_seconds=0, dlq_depth=0,
        effective_rps=effective_rps, allowed_rps=max_rps, adaptive=False,
        signed=False,
    )  # fmt: skip


def test_chart_bars_are_per_minute_oldest_first_and_scaled_to_the_peak() -> None:
    outcomes = [
        OutcomeCount("a", "success", 0, 10),
        OutcomeCount("a", "failed", 0, 5),
        OutcomeCount("a", "success", 14, 20),
        OutcomeCount("b", "success", 3, 7),
    ]
    (row_a, row_b) = overview_rows([figures("a", 10, 20), figures("b", None, 0)], outcomes)
    assert len(row_a.bars) == CHART_MINUTES
    assert (row_a.bars[0].minutes_ago, row_a.bars[0].success_height) == (14, 1.0)
    assert (row_a.bars[-1].success_height, row_a.bars[-1].failed_height) == (0.5, 0.25)
    assert (row_a.success_total, row_a.failed_total) == (30, 5)
    assert row_a.rate_share == 1.0  # capped: the last minute's average can exceed it briefly
    assert row_b.rate_share is None
    assert row_b.bars[-4].success == 7


def test_helpers() -> None:
    assert [age(s) for s in (5, 65, 3_700, 90_000)] == ["5s", "1m 5s", "1h 1m", "1d 1h"]
    assert pretty_json(msgspec.Raw(b'{"a": [1, 2]}'), limit=100) == '{"a": [1, 2]}'
    assert pretty_json({"k": "x" * 50}, limit=10) == '{"k": "xxx…'
    assert pretty_json({"k": 1}) == '{\n  "k": 1\n}'
