"""Inflict and mend real faults in a test's own database (no mocks): see faults.sql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from taskq_core.queries import parse_named_blocks
from taskq_core.queue_names import queue_name_for
from tests.support.target import wait_until

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


def terminate(dsn: str, application: str) -> int:
    """Kill the server processes of every connection named `application`; how many there were."""
    return int(run(dsn, "fault_terminate_backends", {"application": application})[0][0])


def terminate_when_connected(dsn: str, application: str, *, timeout: float = 15.0) -> None:
    """Kill the connection named `application` once it exists (its thread may be reconnecting)."""
    wait_until(lambda: terminate(dsn, application) > 0, timeout=timeout)


def connected(dsn: str, application: str) -> bool:
    """Whether a connection named `application` is open to this database."""
    return int(run(dsn, "fault_count_backends", {"application": application})[0][0]) > 0
