"""The retention job's database access: expired status rows, emptied tasks, old dead letters.

It holds one connection of its own, and on it the session advisory lock that
makes its replica the only one running retention. Each batch is a short
transaction with a lock and statement timeout, so retention never holds locks
long nor queues behind traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

from taskq_core.database import BoundedConnection, connect, database_errors
from taskq_core.errors import DatabaseUnavailableError
from taskq_core.queries import QUERIES
from taskq_core.repository.dlq import forget_params
from taskq_core.settings import Settings


@dataclass(frozen=True, slots=True)
class Deleted:
    """Rows one batch deleted."""

    statuses: int = 0
    tasks: int = 0
    dead_letters: int = 0


class RetentionRepository:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._dlq = settings.dlq_queue_name
        self._conn: BoundedConnection | None = None
        self._leader = False

    def lead(self) -> bool:
        """Whether this replica runs retention now (takes the lock if it is free)."""
        try:
            with database_errors():
                conn = self._connection()
                if not self._leader:
                    # Session locks stack: take it once and keep it with the connection.
                    row = conn.execute(QUERIES["retention_lock"]).fetchone()
                    self._leader = bool(row and row[0])
        except DatabaseUnavailableError:
            self.close()
            raise
        if not self._leader:
            self.close()  # a replica that does not lead holds no connection between rounds
        return self._leader

    def delete_statuses(self, before: datetime, limit: int) -> Deleted:
        """Up to `limit` expirable status rows last changed before `before`, and emptied tasks."""
        with self._transaction() as conn:
            rows = conn.execute(
                QUERIES["delete_expired_statuses"], {"before": before, "limit": limit}
            ).fetchall()
            task_ids: list[UUID] = sorted({row[0] for row in rows})
            tasks = 0
            if task_ids:
                tasks = conn.execute(
                    QUERIES["delete_emptied_tasks"], {"task_ids": task_ids}
                ).rowcount
        return Deleted(statuses=len(rows), tasks=max(tasks, 0))

    def forget_idle_hosts(self, before: datetime, limit: int) -> int:
        """Up to `limit` closed host circuit breakers untouched since `before`."""
        with self._transaction() as conn:
            deleted = conn.execute(
                QUERIES["forget_idle_hosts"], {"before": before, "limit": limit}
            ).rowcount
        return max(deleted, 0)

    def delete_dead_letters(self, before: datetime, limit: int) -> Deleted:
        """Up to `limit` dead letters enqueued before `before`; their status rows forget them."""
        with self._transaction() as conn:
            rows = conn.execute(
                QUERIES["delete_dead_letters"],
                {"dlq": self._dlq, "filter": "{}", "ids": None, "before": before, "limit": limit},
            ).fetchall()
            forget = forget_params(rows)
            if forget is not None:
                conn.execute(QUERIES["forget_dead_letters"], forget)
        return Deleted(dead_letters=len(rows))

    def close(self) -> None:
        if self._conn is not None:
            if self._leader and not self._conn.closed:
                # A connection that fails here has lost its session, and the lock with it.
                with suppress(psycopg.Error):
                    self._conn.execute(QUERIES["retention_unlock"])
            self._conn.close()
            self._conn = None
        self._leader = False

    @contextmanager
    def _transaction(self) -> Iterator[BoundedConnection]:
        """One batch: a transaction with retention's timeouts; a lost connection drops the lock."""
        try:
            with database_errors():
                conn = self._connection()
                with conn.transaction():
                    conn.execute(QUERIES["retention_limits"])
                    yield conn
        except DatabaseUnavailableError:
            # Lost, or a timeout hit: start over on a new connection next round.
            self.close()
            raise

    def _connection(self) -> BoundedConnection:
        if self._conn is None or self._conn.closed:
            self._leader = False
            self._conn = connect(self._settings, name="taskq-retention")
        return self._conn
