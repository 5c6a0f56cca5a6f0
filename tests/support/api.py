"""Helpers for the API tests: a running app behind a test client, and database inspection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from litestar import Litestar
from litestar.testing import TestClient

from taskq_api.app import create_app
from taskq_core.queries import parse_named_blocks
from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings

SQL = parse_named_blocks((Path(__file__).parent / "api_queries.sql").read_text(encoding="utf-8"))
"""The statements of api_queries.sql by name: tests keep their SQL in .sql files too."""


@contextmanager
def api_client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    """The real app (lifespan and pool included) behind Litestar's HTTP test client."""
    with TestClient(create_app(settings)) as client:
        yield client


def batch(
    count: int, *, task_type: str = "sync", url: str = "http://127.0.0.1:9/x"
) -> dict[str, Any]:
    """A POST /tasks body with `count` payloads."""
    return {
        "task_type": task_type,
        "item_id": "item-1",
        "url": url,
        "payloads": [{"data": {"n": n}} for n in range(count)],
    }


def queue_length(dsn: str, task_type: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            SQL["test_queue_length"], {"queue": queue_name_for(task_type)}
        ).fetchone()
    return int(row[0]) if row else 0


def dlq_length(dsn: str, dlq: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(SQL["test_queue_length"], {"queue": dlq}).fetchone()
    return int(row[0]) if row else 0


def counts(dsn: str) -> tuple[int, int, int]:
    """(status rows, task types, task-type queues) in the whole database."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(SQL["test_counts"]).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def statuses(dsn: str, task_id: str | UUID) -> list[tuple[str, int, int]]:
    """(status, attempt, message_id) of every payload of a task, by payload_id."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(SQL["test_statuses"], {"task_id": task_id}).fetchall()
    return [(str(status), int(attempt), int(message_id)) for status, attempt, message_id in rows]


def fail_everything(dsn: str, task_type: str, dlq: str) -> int:
    """Do what a worker does for a permanent failure, for every queued message of a type.

    One transaction: the original message text goes to the DLQ, the status
    becomes failed, the message leaves the work queue. Returns how many moved.
    """
    queue = queue_name_for(task_type)
    with psycopg.connect(dsn) as conn, conn.transaction():
        taken = conn.execute(SQL["test_take_all"], {"queue": queue}).fetchall()
        ids = [int(msg_id) for msg_id, _ in taken]
        if ids:
            conn.execute(
                SQL["test_send_all"], {"queue": dlq, "messages": [text for _, text in taken]}
            )
            conn.execute(SQL["test_mark_failed"], {"message_ids": ids, "task_type": task_type})
            conn.execute(SQL["test_delete_all"], {"queue": queue, "message_ids": ids})
    return len(ids)
