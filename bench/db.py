"""The bench database (fresh per run) and the raw PGMQ baselines measured on it."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from bench.pg_cpu import BENCH_APPLICATION
from taskq_core.migrate import migrate
from taskq_dev.queries import DEV_QUERIES

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DLQ = "task_dlq"


def server_dsn() -> str:
    """POSTGRES_DSN, else TASKQ_TEST_DSN, else the local server."""
    return os.environ.get("POSTGRES_DSN") or os.environ.get("TASKQ_TEST_DSN") or DEFAULT_DSN


def server_version(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(DEV_QUERIES["bench_server_version"]).fetchone()
    return str(row[0]) if row else "?"


@contextmanager
def fresh_database(admin_dsn: str, name: str, *, template: str | None = None) -> Iterator[str]:
    """Create database `name` (migrated, or cloned from `template`), yield its DSN, drop it."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(SQL(DEV_QUERIES["bench_drop_database"]).format(name=Identifier(name)))
        if template is None:
            conn.execute(SQL(DEV_QUERIES["bench_create_database"]).format(name=Identifier(name)))
        else:
            conn.execute(
                SQL(DEV_QUERIES["bench_clone_database"]).format(
                    name=Identifier(name), template=Identifier(template)
                )
            )
    dsn = make_conninfo(admin_dsn, dbname=name)
    try:
        if template is None:
            migrate(dsn, dlq_queue_name=DLQ)
        yield dsn
    finally:
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(SQL(DEV_QUERIES["bench_drop_database"]).format(name=Identifier(name)))
        except psycopg.Error as error:
            print(f"warning: could not drop database {name}: {error}", file=sys.stderr)


def database_transactions(dsn: str) -> int:
    """Transactions committed or rolled back in the database of `dsn` so far.

    Read from the admin database, not from a connection to that one: read by
    the bench's own connection to it, the first read of a window was followed
    within a second by ~130 transactions that no statement in the window made
    (log_statement = all), a third of a 20 s idle window's count.
    """
    database = str(conninfo_to_dict(dsn).get("dbname", ""))
    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        row = conn.execute(DEV_QUERIES["bench_transactions"], {"database": database}).fetchone()
    return int(row[0]) if row else 0


class Database:
    """One autocommit connection to the bench database for raw PGMQ work and status counts."""

    def __init__(self, dsn: str) -> None:
        # Named, so that bench.pg_cpu leaves the bench's own polling out of PostgreSQL's share.
        self.conn = psycopg.connect(dsn, autocommit=True, application_name=BENCH_APPLICATION)

    def close(self) -> None:
        self.conn.close()

    def create_queue(self, queue: str) -> None:
        self.conn.execute(DEV_QUERIES["bench_create_queue"], {"queue": queue})

    def drop_queue(self, queue: str) -> None:
        self.conn.execute(DEV_QUERIES["bench_drop_queue"], {"queue": queue})

    def purge(self, queue: str) -> None:
        self.conn.execute(DEV_QUERIES["bench_purge_queue"], {"queue": queue})

    def queue_length(self, queue: str) -> int:
        row = self.conn.execute(DEV_QUERIES["bench_queue_length"], {"queue": queue}).fetchone()
        return int(row[0]) if row else 0

    def status_counts(self, task_type: str) -> dict[str, int]:
        rows = self.conn.execute(DEV_QUERIES["bench_status_counts"], {"task_type": task_type})
        return {str(status): int(n) for status, n in rows.fetchall()}

    def delivery_rate(self, task_type: str) -> float | None:
        """Outcomes/s of `task_type` between its first and last recorded outcome."""
        row = self.conn.execute(
            DEV_QUERIES["bench_delivery_rate"], {"task_type": task_type}
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def done(self, task_type: str) -> int:
        """Messages of `task_type` in a final status (success or failed)."""
        counts = self.status_counts(task_type)
        return counts.get("success", 0) + counts.get("failed", 0)

    def send_batches(self, queue: str, batches: Sequence[Sequence[object]]) -> float:
        """Raw `pgmq.send_batch` of each batch, one autocommit call each; seconds taken."""
        started = time.perf_counter()
        for batch in batches:
            self.conn.execute(
                DEV_QUERIES["bench_send_batch"],
                {"queue": queue, "messages": [Jsonb(message) for message in batch]},
            ).fetchall()
        return time.perf_counter() - started

    def read(self, queue: str, qty: int, vt: int = 30) -> list[tuple[int, Any]]:
        rows = self.conn.execute(
            DEV_QUERIES["bench_read"], {"queue": queue, "vt": vt, "qty": qty}
        ).fetchall()
        return [(int(row[0]), json.loads(row[1])) for row in rows]

    def delete(self, queue: str, message_ids: list[int]) -> None:
        self.conn.execute(
            DEV_QUERIES["bench_delete"], {"queue": queue, "message_ids": message_ids}
        ).fetchall()

    def burn_down(self, queue: str, *, batch: int = 100, limit: int = 10_000_000) -> int:
        """Raw read(batch) + delete in one transaction per batch until the queue is empty."""
        total = 0
        while total < limit:
            with self.conn.transaction():
                rows = self.conn.execute(
                    DEV_QUERIES["bench_read"], {"queue": queue, "vt": 30, "qty": batch}
                ).fetchall()
                if not rows:
                    return total
                self.conn.execute(
                    DEV_QUERIES["bench_delete"],
                    {"queue": queue, "message_ids": [row[0] for row in rows]},
                ).fetchall()
            total += len(rows)
        return total
