"""Inflict and mend real faults in a test's own database (no mocks): see faults.sql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from taskq_core.queries import parse_named_blocks
from taskq_core.queue_names import queue_name_for

FAULTS = parse_named_blocks((Path(__file__).parent / "faults.sql").read_text(encoding="utf-8"))


def run(dsn: str, name: str, params: dict[str, Any] | None = None, **identifiers: str) -> list[Any]:
    """Run fault `name` (its {placeholders} filled with identifiers); the rows it returned."""
    statement = sql.SQL(FAULTS[name]).format(  # type: ignore[arg-type]
        **{key: sql.Identifier(value) for key, value in identifiers.items()}
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def queue_table(task_type: str) -> str:
    """The PGMQ table holding `task_type`'s messages."""
    return f"q_{queue_name_for(task_type)}"


def restore_take_tokens(dsn: str, definition: str) -> None:
    """Put back the function text saved with fault_function_definition."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(definition.encode())
