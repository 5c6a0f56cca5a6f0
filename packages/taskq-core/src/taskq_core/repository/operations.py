"""The API's day-2 statements: list tasks, cancel messages, list, pause and resume task types.

Listings run unprepared (`prepare=False`): PostgreSQL then plans each one
with the actual filter values and uses the index those filters need; a
prepared, generic plan could not (see sql/queries/operations.sql).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row

from taskq_core.cursors import decode_cursor, encode_cursor
from taskq_core.database import AsyncBoundedConnection, AsyncPool
from taskq_core.errors import DatabaseUnavailableError, NotFoundError
from taskq_core.operation_models import (
    CancelResult,
    HostCircuit,
    StatusCounts,
    TaskPage,
    TaskSummary,
    TaskTypeFigures,
    TaskTypePause,
)
from taskq_core.queries import QUERIES
from taskq_core.repository.circuits import list_hosts
from taskq_core.repository.pooled import pooled_connection
from taskq_core.status import TaskStatus
from taskq_core.type_defaults import task_type_view

CANCEL_ATTEMPTS = 3
"""A cancel can deadlock with an outcome write locking the same rows in another order: retry."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TaskFilters:
    """The filters of GET /tasks; a cursor is only valid under the filters it was made for."""

    task_type: str | None = None
    status: TaskStatus | None = None
    item_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def as_params(self) -> dict[str, object]:
        return {
            "task_type": self.task_type,
            "status": None if self.status is None else self.status.value,
            "item_id": self.item_id,
            "created_after": self.created_after,
            "created_before": self.created_before,
        }


@dataclass(frozen=True, slots=True)
class _TaskRow:
    task_id: UUID
    task_type: str
    item_id: str
    payload_count: int
    created_at: datetime
    pending: int
    success: int
    failed: int
    cancelled: int


class OperationsRepository:
    def __init__(self, pool: AsyncPool) -> None:
        self._pool = pool

    async def list_tasks(self, filters: TaskFilters, *, limit: int, cursor: str | None) -> TaskPage:
        """One page of tasks, newest first; `next_cursor` continues under the same filters."""
        params = filters.as_params()
        after_created_at: str | None = None
        after_task_id: str | None = None
        if cursor is not None:
            position = decode_cursor(cursor, "tasks", params)
            after_created_at, after_task_id = str(position[0]), str(position[1])
        async with pooled_connection(self._pool) as conn:
            rows = await _fetch_tasks(
                conn,
                {
                    **params,
                    "after_created_at": after_created_at,
                    "after_task_id": after_task_id,
                    "limit": limit + 1,
                },
            )
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(
                "tasks", params, [last.created_at.isoformat(), str(last.task_id)]
            )
        return TaskPage(tasks=[_summary(row) for row in page], next_cursor=next_cursor)

    async def cancel(self, task_id: UUID, message_id: int | None = None) -> CancelResult:
        """Cancel what no worker holds; NotFoundError for an unknown task or message."""
        params = {"task_id": task_id, "message_id": message_id}

        async def run(conn: AsyncBoundedConnection) -> list[tuple[int, bool]]:
            async with conn.transaction():
                cursor = await conn.execute(QUERIES["cancel_messages"], params)
                return [(int(row[0]), bool(row[1])) for row in await cursor.fetchall()]

        rows = await self._retrying_deadlocks(run)
        if not rows:
            async with pooled_connection(self._pool) as conn:
                cursor = await conn.execute(QUERIES["task_exists"], params)
                found = await cursor.fetchone()
            if not (found and found[0]):
                if message_id is None:
                    raise NotFoundError("task", str(task_id))
                raise NotFoundError("message", f"{message_id} of task {task_id}")
        cancelled = [message for message, done in rows if done]
        in_flight = [message for message, done in rows if not done]
        return CancelResult(
            task_id=task_id,
            cancelled_count=len(cancelled),
            cancelled_message_ids=cancelled,
            in_flight_count=len(in_flight),
            in_flight_message_ids=in_flight,
        )

    async def task_types(self) -> list[TaskTypeFigures]:
        async with pooled_connection(self._pool) as conn:
            cursor = conn.cursor(row_factory=class_row(_FiguresRow))
            await cursor.execute(QUERIES["task_type_figures"])
            rows = await cursor.fetchall()
        return [row.figures() for row in rows]

    async def hosts(self) -> list[HostCircuit]:
        """Every target host's circuit breaker (GET /hosts)."""
        return await list_hosts(self._pool)

    async def set_paused(self, task_type: str, *, paused: bool) -> TaskTypePause:
        """Pause or resume a type for every worker replica; NotFoundError for an unknown type."""
        if "\x00" in task_type:  # text cannot hold NUL: no such type exists
            raise NotFoundError("task type", task_type.replace("\x00", "\\x00"))
        async with pooled_connection(self._pool) as conn, conn.transaction():
            cursor = await conn.execute(
                QUERIES["set_task_type_paused"], {"task_type": task_type, "paused": paused}
            )
            changed = await cursor.fetchone()
        if changed is None:
            raise NotFoundError("task type", task_type)
        return TaskTypePause(task_type=task_type, paused=paused)

    async def _retrying_deadlocks(
        self, work: Callable[[AsyncBoundedConnection], Awaitable[T]]
    ) -> T:
        for attempt in range(CANCEL_ATTEMPTS):
            try:
                async with pooled_connection(self._pool) as conn:
                    return await work(conn)
            except DatabaseUnavailableError as error:
                rolled_back = isinstance(error.__cause__, psycopg.errors.TransactionRollback)
                if not rolled_back or attempt == CANCEL_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


INDEXED_STATUSES = frozenset(
    {TaskStatus.PENDING.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value}
)
"""Statuses whose rows have an index of their own (list_tasks_in_status)."""


async def _fetch_tasks(conn: AsyncBoundedConnection, params: dict[str, object]) -> list[_TaskRow]:
    query = "list_tasks_in_status" if params["status"] in INDEXED_STATUSES else "list_tasks"
    cursor = conn.cursor(row_factory=class_row(_TaskRow))
    await cursor.execute(QUERIES[query], params, prepare=False)
    return await cursor.fetchall()


def _summary(row: _TaskRow) -> TaskSummary:
    return TaskSummary(
        task_id=row.task_id,
        task_type=row.task_type,
        item_id=row.item_id,
        created_at=row.created_at,
        message_count=row.payload_count,
        counts=StatusCounts(
            pending=row.pending, success=row.success, failed=row.failed, cancelled=row.cancelled
        ),
    )


@dataclass(frozen=True, slots=True)
class _FiguresRow:
    task_type: str
    max_rps: float | None
    paused: bool
    created_at: datetime
    updated_at: datetime
    backlog: int
    visible: int
    oldest_age_seconds: int
    retrying: int
    dlq_depth: int
    effective_rps: float
    allowed_rps: float | None
    adaptive: bool
    defaults: str | None
    max_concurrency: int | None
    snoozed_until: datetime | None
    signed: bool
    min_rps: float | None
    paced_until: datetime | None

    def figures(self) -> TaskTypeFigures:
        hidden = self.backlog - self.visible
        # The same configuration fields as GET /task-types/{t}, built by the same function.
        view = task_type_view(
            task_type=self.task_type,
            max_rps=self.max_rps,
            created_at=self.created_at,
            updated_at=self.updated_at,
            defaults=self.defaults,
            max_concurrency=self.max_concurrency,
            snoozed_until=self.snoozed_until,
            signed=self.signed,
            adaptive=self.adaptive,
            min_rps=self.min_rps,
            paced_until=self.paced_until,
        )
        configuration = msgspec.structs.asdict(view)
        configuration["allowed_rps"] = (
            None if self.allowed_rps is None else round(self.allowed_rps, 3)
        )
        return TaskTypeFigures(
            **configuration,
            paused=self.paused,
            backlog=self.backlog,
            visible=self.visible,
            # Hidden messages are either held by a worker or waiting for a retry.
            in_flight=max(0, hidden - self.retrying),
            retrying=self.retrying,
            oldest_age_seconds=self.oldest_age_seconds,
            dlq_depth=self.dlq_depth,
            effective_rps=round(float(self.effective_rps), 3),
        )
