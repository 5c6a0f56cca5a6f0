"""The console overview's chart query reads indexes, not the whole status table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from taskq_core.queries import QUERIES
from tests.support.api import SQL


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def test_the_outcome_chart_does_not_scan_the_status_table(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(SQL["test_fill_tasks"], {"count": 100_000})
        conn.execute(SQL["test_analyze_statuses"])
        row = conn.execute(
            f"{SQL['test_explain']} {QUERIES['console_outcomes']}", {"minutes": 15}
        ).fetchone()
    assert row is not None
    scans = [
        node for node in nodes(row[0][0]["Plan"]) if node.get("Relation Name") == "task_status"
    ]
    assert len(scans) == 2, scans
    assert {node["Node Type"] for node in scans} <= {
        "Index Scan",
        "Index Only Scan",
        "Bitmap Heap Scan",
    }, scans
