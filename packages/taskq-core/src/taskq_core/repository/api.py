"""All database I/O of the API service, over an async psycopg pool.

psycopg errors stop here, translated by `taskq_core.database.database_errors`
(unreachable or frozen: DatabaseUnavailableError); a value the database rejects
becomes InvalidFieldError. Every write runs in one transaction, so a request
either changes everything it meant to or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec
import psycopg
from loguru import logger
from psycopg.rows import kwargs_row

from taskq_core.callbacks import callback_type_for, wants_callbacks
from taskq_core.database import AsyncBoundedConnection, AsyncPool, first_line
from taskq_core.errors import InvalidFieldError, NotFoundError, TaskqError, TooManyTaskTypesError
from taskq_core.idempotency import HEADER as IDEMPOTENCY_HEADER
from taskq_core.idempotency import IdempotencyClaim
from taskq_core.ids import created_at as id_created_at
from taskq_core.models import (
    CallbackView,
    DeliveryDefaults,
    MessageStatusView,
    QueuedCall,
    ResponseView,
    TaskCreated,
    TaskStatusView,
    TaskTypeView,
)
from taskq_core.queries import QUERIES
from taskq_core.queue_names import queue_name_for
from taskq_core.repository.idempotency import claim_key, record_answer, stored_answer
from taskq_core.repository.pooled import pooled_connection
from taskq_core.secret_box import SecretBox
from taskq_core.status import TaskStatus
from taskq_core.type_defaults import check_rate_shaping, encode_defaults, task_type_view

_NO_DEFAULTS = DeliveryDefaults()
DEFAULT_MAX_TASK_TYPES = 1000
"""MAX_TASK_TYPES's default: each type costs a PGMQ queue (7 relations) and metric series."""
PING_TIMEOUT = 1.0
"""Seconds readiness waits for a connection and for its answer."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One task to queue: its calls, with what POST /tasks said about all of them."""

    task_id: UUID
    task_type: str
    item_id: str
    max_rps: float | None
    calls: Sequence[QueuedCall]
    # When each call may first be delivered; None (or no list): at once.
    scheduled: Sequence[datetime | None] | None = None


class ApiRepository:
    """The API's statements; owns the cache of task types whose queue is known to exist."""

    def __init__(
        self,
        pool: AsyncPool,
        *,
        max_task_types: int = DEFAULT_MAX_TASK_TYPES,
        status_retention: float | None = None,
        secrets: SecretBox | None = None,
    ) -> None:
        self._pool = pool
        self._secrets = secrets  # seals signing secrets; None: SECRETS_KEY is not set
        self._max_task_types = max_task_types
        self._status_retention = status_retention
        # task type -> queue name, filled only after the commit that made the queue
        # exist, so a rolled-back registration is never remembered.
        self._queues: dict[str, str] = {}

    def _connection(
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AsyncBoundedConnection]:
        return pooled_connection(self._pool, timeout)

    async def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """Raise DatabaseUnavailableError unless the database answers within `timeout`."""
        async with self._connection(timeout) as conn:
            await conn.execute(QUERIES["ping"])

    async def submit(self, submission: Submission) -> list[int]:
        """Queue every call with its status row in one transaction; the new message ids."""
        async with self._connection() as conn, conn.transaction():
            queue, message_ids = await self._enqueue(conn, submission)
        self._queues[submission.task_type] = queue
        return message_ids

    async def submit_once(
        self, claim: IdempotencyClaim | None, submission: Submission
    ) -> tuple[TaskCreated, bool]:
        """Like `submit`, at most once per key: (the answer, True when it is a replay).

        The key is claimed in the submission's transaction, so a concurrent
        repeat waits for it to commit and then replays its answer; a repeat
        with another body raises IdempotencyConflictError. No claim: `submit`.
        """
        task_id = submission.task_id
        if claim is None:
            message_ids = await self.submit(submission)
            return TaskCreated(task_id=task_id, message_ids=message_ids), False
        for _ in range(3):
            async with self._connection() as conn, conn.transaction():
                if await claim_key(conn, claim):
                    queue, message_ids = await self._enqueue(conn, submission)
                    await record_answer(conn, claim.key, task_id, message_ids)
                    created = TaskCreated(task_id=task_id, message_ids=message_ids)
                else:
                    stored = await stored_answer(conn, claim)
                    if stored is None:
                        continue  # expired between the claim and the read: claim again
                    return stored, True
            self._queues[submission.task_type] = queue
            return created, False
        raise TaskqError(f"{IDEMPOTENCY_HEADER} could be neither claimed nor read; retry")

    async def _enqueue(
        self, conn: AsyncBoundedConnection, submission: Submission
    ) -> tuple[str, list[int]]:
        """In the caller's transaction: send the calls, write their status rows; (queue, ids)."""
        task_type, calls, max_rps = submission.task_type, submission.calls, submission.max_rps
        encoder = msgspec.json.Encoder()
        messages = [encoder.encode(call).decode() for call in calls]
        payloads = [encoder.encode(call.data).decode() for call in calls]
        held = (
            list(submission.scheduled) if submission.scheduled is not None else [None] * len(calls)
        )
        queue = self._queues.get(task_type) or await self.ensure_queue(conn, task_type)
        if any(wants_callbacks(call) for call in calls):
            # The callbacks' type must exist before a worker enqueues one (its queue).
            callback_type = callback_type_for(task_type)
            if callback_type not in self._queues:
                await self.ensure_queue(conn, callback_type)
        if max_rps is not None:
            await conn.execute(
                QUERIES["apply_batch_max_rps"], {"task_type": task_type, "max_rps": max_rps}
            )
        try:
            cursor = await conn.execute(
                QUERIES["enqueue_task"],
                {
                    "queue": queue,
                    "messages": messages,
                    "task_id": submission.task_id,
                    "task_type": task_type,
                    "item_id": submission.item_id,
                    "payloads": payloads,
                    "scheduled": held,
                },
            )
        except psycopg.DataError as error:
            raise InvalidFieldError(
                "payloads", f"rejected by the database: {first_line(error)}"
            ) from error
        # No separate NOTIFY: enqueue_task already calls pg_notify('taskq_work',
        # queue), delivered at commit (one round trip for a known type).
        message_ids = [int(row[0]) for row in await cursor.fetchall()]
        if any(at is not None for at in held):
            await conn.execute(
                QUERIES["hold_messages"],
                {"queue": queue, "message_ids": message_ids, "visible_at": held},
            )
        return queue, message_ids

    async def ensure_queue(
        self, conn: AsyncBoundedConnection, task_type: str, *, limited: bool = True
    ) -> str:
        """The type's queue name, registering the type and creating its queue if new.

        `limited`: refuse a new type beyond MAX_TASK_TYPES (a DLQ requeue is not,
        its type existed when the message was sent).
        """
        cursor = await conn.execute(QUERIES["task_type_queue"], {"task_type": task_type})
        if (row := await cursor.fetchone()) is not None:
            return str(row[0])
        if limited:
            await self._make_room_for_a_type(conn)
        queue = queue_name_for(task_type)
        cursor = await conn.execute(
            QUERIES["register_task_type"], {"task_type": task_type, "queue": queue}
        )
        if await cursor.fetchone() is not None:
            await conn.execute(QUERIES["create_queue"], {"queue": queue})
            logger.bind(task_type=task_type).info("registered task type, queue {}", queue)
            return queue
        # Registered meanwhile by a concurrent request (only possible when not `limited`).
        cursor = await conn.execute(QUERIES["task_type_queue"], {"task_type": task_type})
        row = await cursor.fetchone()
        if row is None:  # pragma: no cover - the insert above just conflicted with this row
            raise TaskqError(f"task type {task_type!r} vanished while being registered")
        return str(row[0])

    async def _make_room_for_a_type(self, conn: AsyncBoundedConnection) -> None:
        """Lock type creation for this transaction; TooManyTaskTypesError when at the cap."""
        await conn.execute(QUERIES["lock_task_type_creation"])
        cursor = await conn.execute(QUERIES["count_task_types"])
        row = await cursor.fetchone()
        if row is not None and int(row[0]) >= self._max_task_types:
            raise TooManyTaskTypesError(
                "task_type",
                f"this server already has {self._max_task_types} task types (MAX_TASK_TYPES); "
                "reuse an existing type or ask the operator to raise the limit",
            )

    async def task_status(self, task_id: UUID) -> TaskStatusView:
        """Every message of a task, ordered by payload_id; NotFoundError for an unknown id."""
        async with self._connection() as conn:
            cursor = conn.cursor(row_factory=kwargs_row(_message_status))
            await cursor.execute(QUERIES["task_statuses"], {"task_id": task_id})
            statuses = await cursor.fetchall()
        if not statuses:
            raise NotFoundError("task", str(task_id), self._purged_hint(task_id))
        return TaskStatusView(task_id=task_id, statuses=statuses)

    def _purged_hint(self, task_id: UUID) -> str:
        """Why an id may be unknown: created before the retention period, its statuses are gone."""
        created = id_created_at(task_id)
        if created is None or self._status_retention is None:
            return ""
        if datetime.now(UTC) - created < timedelta(seconds=self._status_retention):
            return ""
        return (
            f"it was created on {created:%Y-%m-%d %H:%M} UTC, longer ago than STATUS_RETENTION, "
            "so its finished statuses were deleted by retention"
        )

    async def configure_task_type(
        self,
        task_type: str,
        max_rps: float | None,
        defaults: DeliveryDefaults = _NO_DEFAULTS,
        max_concurrency: int | None = None,
        signing_secrets: list[str] | None = None,
        *,
        adaptive: bool = False,
        min_rps: float | None = None,
    ) -> TaskTypeView:
        """Upsert a type's global rate limit (None: unlimited) and delivery defaults.

        Creates the type's queue when the type is new. `signing_secrets` (None:
        unchanged, []: none) are sealed before they are stored. `adaptive`
        (with its floor `min_rps`) needs a max_rps (checked by the caller).
        """
        queue = queue_name_for(task_type)
        sealed = self._seal(task_type, signing_secrets)
        params = {
            "task_type": task_type,
            "queue": queue,
            "max_rps": max_rps,
            "defaults": encode_defaults(defaults),
            "max_concurrency": max_concurrency,
            "adaptive": adaptive,
            "min_rps": min_rps,
        }
        async with self._connection() as conn, conn.transaction():
            exists = await conn.execute(QUERIES["task_type_queue"], {"task_type": task_type})
            if await exists.fetchone() is None:
                await self._make_room_for_a_type(conn)
            cursor = await conn.execute(QUERIES["configure_task_type"], params)
            row = await cursor.fetchone()
            assert row is not None  # an upsert with RETURNING always returns its row
            if row[0]:  # created
                await conn.execute(QUERIES["create_queue"], {"queue": queue})
            await conn.execute(
                QUERIES["configure_rate"], {"task_type": task_type, "max_rps": max_rps}
            )
            await conn.execute(QUERIES["configure_adaptive"], {"task_type": task_type})
            if signing_secrets is not None:
                await conn.execute(
                    QUERIES["set_signing_secrets"], {"task_type": task_type, "sealed": sealed}
                )
            view_cursor = conn.cursor(row_factory=kwargs_row(task_type_view))
            await view_cursor.execute(QUERIES["get_task_type"], {"task_type": task_type})
            view = await view_cursor.fetchone()
        assert view is not None  # written in this transaction
        return view

    async def set_max_rps(self, task_type: str, max_rps: float | None) -> TaskTypeView:
        """Change a type's rate limit and nothing else; NotFoundError for an unknown type.

        An operator lowering a rate must not also switch off the adaptive rate or
        wipe the type's delivery defaults, as a full configure would.
        """
        _refuse_nul(task_type)
        params = {"task_type": task_type, "max_rps": max_rps}
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(QUERIES["set_max_rps"], params)
            row = await cursor.fetchone()
            if row is None:
                raise NotFoundError("task type", task_type)
            adaptive, min_rps = row
            check_rate_shaping(adaptive=adaptive, max_rps=max_rps, min_rps=min_rps)
            await conn.execute(QUERIES["configure_rate"], params)
            await conn.execute(QUERIES["configure_adaptive"], {"task_type": task_type})
            view_cursor = conn.cursor(row_factory=kwargs_row(task_type_view))
            await view_cursor.execute(QUERIES["get_task_type"], {"task_type": task_type})
            view = await view_cursor.fetchone()
        assert view is not None  # updated in this transaction
        return view

    def _seal(self, task_type: str, secrets: list[str] | None) -> bytes | None:
        """The secrets sealed for storage; None for none (or unchanged)."""
        if not secrets:
            return None
        if self._secrets is None:
            raise InvalidFieldError(
                "signing_secrets",
                "this server has no SECRETS_KEY to store them encrypted; ask its operator",
            )
        if len(set(secrets)) != len(secrets):
            raise InvalidFieldError("signing_secrets", "must not repeat a secret")
        return self._secrets.seal(task_type, secrets)

    async def get_task_type(self, task_type: str) -> TaskTypeView:
        """A type's configuration; NotFoundError when it was never submitted nor configured."""
        _refuse_nul(task_type)
        async with self._connection() as conn:
            cursor = conn.cursor(row_factory=kwargs_row(task_type_view))
            await cursor.execute(QUERIES["get_task_type"], {"task_type": task_type})
            view = await cursor.fetchone()
        if view is None:
            raise NotFoundError("task type", task_type)
        return view


def _refuse_nul(task_type: str) -> None:
    """PostgreSQL text cannot hold NUL, so no such type can exist (nor be queried)."""
    if "\x00" in task_type:
        raise NotFoundError("task type", task_type.replace("\x00", "\\x00"))


def _message_status(
    *,
    message_id: int,
    item_id: str,
    task_type: str,
    payload: str | None,
    status: str,
    error: str,
    attempt: int,
    updated_at: datetime,
    payload_id: int,
    http_status: int | None,
    duration_ms: float | None,
    created_at: datetime,
    dlq_message_id: int | None,
    scheduled_for: datetime | None,
    response_body: str | None,
    response_body_encoding: Literal["utf-8", "base64"] | None,
    response_content_type: str | None,
    response_truncated: bool | None,
    snoozes: int,
    callback_kind: Literal["success", "failure"] | None = None,
    callback_status: Literal["pending", "success", "failed"] | None = None,
    callback_attempt: int | None = None,
    callback_error: str | None = None,
    callback_http_status: int | None = None,
    callback_duration_ms: float | None = None,
    callback_updated_at: datetime | None = None,
) -> MessageStatusView:
    # The payload is passed through as the stored JSON text, never re-parsed.
    return MessageStatusView(
        message_id=message_id,
        item_id=item_id,
        task_type=task_type,
        payload=msgspec.Raw(payload.encode() if payload is not None else b"null"),
        status=TaskStatus(status),
        error=error,
        attempt=attempt,
        updated_at=updated_at,
        payload_id=payload_id,
        http_status=http_status,
        duration_ms=duration_ms,
        created_at=created_at,
        dlq_message_id=dlq_message_id,
        scheduled_for=scheduled_for,
        response=(
            None
            if response_body is None or response_body_encoding is None
            else ResponseView(
                body=response_body,
                encoding=response_body_encoding,
                content_type=response_content_type or "",
                truncated=bool(response_truncated),
            )
        ),
        snoozes=snoozes,
        callback=(
            None
            if callback_kind is None or callback_status is None or callback_updated_at is None
            else CallbackView(
                kind=callback_kind,
                status=callback_status,
                attempt=callback_attempt or 0,
                error=callback_error or "",
                updated_at=callback_updated_at,
                http_status=callback_http_status,
                duration_ms=callback_duration_ms,
            )
        ),
    )
