"""The API's dead-letter statements: browse, reprocess (with edits) and purge.

Reprocess and purge work in chunks, one transaction each, so a large DLQ never
means one long transaction. Each chunk takes its rows with FOR UPDATE SKIP
LOCKED and deletes them before committing: concurrent calls never handle the
same dead letter twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec
from loguru import logger
from psycopg.rows import TupleRow, class_row

from taskq_core.cursors import decode_cursor, encode_cursor
from taskq_core.database import AsyncBoundedConnection, AsyncPool
from taskq_core.models import DlqReprocessed, QueuedCall
from taskq_core.operation_models import DeadLetter, DeadLetterCall, DlqPage
from taskq_core.queries import QUERIES
from taskq_core.redaction import redact_headers, redact_url
from taskq_core.repository.api import ApiRepository
from taskq_core.repository.pooled import pooled_connection

CHUNK = 500
"""Dead letters handled per transaction: bounded transactions however large the DLQ is."""

Rewrite = Callable[[QueuedCall], QueuedCall]
_decode_call = msgspec.json.Decoder(QueuedCall).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class DlqSelection:
    """Which dead letters an operation applies to; empty fields do not filter."""

    task_type: str | None = None
    task_id: UUID | None = None
    message_ids: Sequence[int] | None = None

    def containment(self) -> str:
        """The jsonb the messages must contain (task_type, task_id)."""
        selector: dict[str, str] = {}
        if self.task_type is not None:
            selector["task_type"] = self.task_type
        if self.task_id is not None:
            selector["task_id"] = str(self.task_id)
        return _encode(selector).decode()

    def cursor_filters(self) -> dict[str, object]:
        return {"task_type": self.task_type, "task_id": self.task_id}


class _Headers(msgspec.Struct):
    error: str | None = None
    http_status: int | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class _DeadRow:
    msg_id: int
    enqueued_at: datetime
    message: str
    headers: str | None


@dataclass(frozen=True, slots=True)
class _Taken:
    dlq_message_id: int
    call: QueuedCall
    rewritten: bool


class DlqRepository:
    def __init__(
        self, pool: AsyncPool, queues: ApiRepository, *, dlq_queue_name: str, chunk: int = CHUNK
    ) -> None:
        self._pool = pool
        self._queues = queues  # registers a type whose queue is gone, as submission does
        self._dlq = dlq_queue_name
        self._chunk = chunk

    async def page(self, selection: DlqSelection, *, limit: int, cursor: str | None) -> DlqPage:
        """Dead letters newest first, credentials redacted."""
        filters = selection.cursor_filters()
        before = None if cursor is None else int(decode_cursor(cursor, "dlq", filters)[0])
        params = {
            "dlq": self._dlq,
            "filter": selection.containment(),
            "before": before,
            "limit": limit + 1,
        }
        async with pooled_connection(self._pool) as conn:
            rows_cursor = conn.cursor(row_factory=class_row(_DeadRow))
            await rows_cursor.execute(QUERIES["dlq_page"], params)
            rows = await rows_cursor.fetchall()
        page = rows[:limit]
        next_cursor = (
            encode_cursor("dlq", filters, [page[-1].msg_id]) if len(rows) > limit else None
        )
        return DlqPage(dead_letters=[_dead_letter(row) for row in page], next_cursor=next_cursor)

    async def reprocess(
        self, selection: DlqSelection, rewrite: Rewrite | None = None
    ) -> DlqReprocessed:
        """Move matching dead letters back to their work queues (rewritten), chunk by chunk."""
        message_ids: list[int] = []
        while True:
            taken, requeued = await self._reprocess_chunk(selection, rewrite)
            message_ids.extend(requeued)
            if requeued:
                logger.info(
                    "requeued {} DLQ message(s), {} so far", len(requeued), len(message_ids)
                )
            if taken < self._chunk:
                break
        return DlqReprocessed(reprocessed_count=len(message_ids), message_ids=message_ids)

    async def purge(self, selection: DlqSelection) -> int:
        """Delete matching dead letters for good; their failed statuses become expirable."""
        purged = 0
        while True:
            async with pooled_connection(self._pool) as conn, conn.transaction():
                count = await delete_dead_letters(
                    conn,
                    dlq=self._dlq,
                    containment=selection.containment(),
                    ids=selection.message_ids,
                    before=None,
                    limit=self._chunk,
                )
            purged += count
            if count < self._chunk:
                return purged

    async def _reprocess_chunk(
        self, selection: DlqSelection, rewrite: Rewrite | None
    ) -> tuple[int, list[int]]:
        async with pooled_connection(self._pool) as conn, conn.transaction():
            cursor = await conn.execute(
                QUERIES["take_dead_letters"],
                {
                    "dlq": self._dlq,
                    "filter": selection.containment(),
                    "ids": None if selection.message_ids is None else list(selection.message_ids),
                    "limit": self._chunk,
                },
            )
            rows = await cursor.fetchall()
            by_type: dict[str, list[_Taken]] = defaultdict(list)
            for row in rows:
                taken = _take(int(row[0]), str(row[1]), rewrite)
                if taken is not None:
                    by_type[taken.call.task_type].append(taken)
            requeued: list[tuple[_Taken, int]] = []
            for task_type, group in by_type.items():
                # Not limited by MAX_TASK_TYPES: the type existed when the message was sent.
                queue = await self._queues.ensure_queue(conn, task_type, limited=False)
                requeued.extend(await _requeue(conn, queue, group))
            if requeued:
                await _mark_requeued(conn, requeued)
                await conn.execute(
                    QUERIES["delete_messages"],
                    {
                        "queue": self._dlq,
                        "message_ids": [taken.dlq_message_id for taken, _ in requeued],
                    },
                )
        return len(rows), [new_id for _, new_id in requeued]


async def delete_dead_letters(
    conn: AsyncBoundedConnection,
    *,
    dlq: str,
    containment: str,
    ids: Sequence[int] | None,
    before: datetime | None,
    limit: int,
) -> int:
    """One chunk of deletions; the failed status rows forget their dead letters."""
    cursor = await conn.execute(
        QUERIES["delete_dead_letters"],
        {
            "dlq": dlq,
            "filter": containment,
            "ids": None if ids is None else list(ids),
            "before": before,
            "limit": limit,
        },
    )
    rows = await cursor.fetchall()
    forget = forget_params(rows)
    if forget is not None:
        await conn.execute(QUERIES["forget_dead_letters"], forget)
    return len(rows)


def forget_params(rows: Sequence[TupleRow]) -> dict[str, list[object]] | None:
    """forget_dead_letters' parameters for deleted (msg_id, task_id, payload_id) rows.

    Messages that are not taskq calls have no status row to update.
    """
    known = [row for row in rows if _is_uuid(row[1]) and str(row[2] or "").isdigit()]
    if not known:
        return None
    return {
        "task_ids": [row[1] for row in known],
        "payload_ids": [int(row[2]) for row in known],
        "dlq_ids": [int(row[0]) for row in known],
    }


async def _requeue(
    conn: AsyncBoundedConnection, queue: str, group: list[_Taken]
) -> list[tuple[_Taken, int]]:
    cursor = await conn.execute(
        QUERIES["requeue_messages"],
        {"queue": queue, "messages": [_encode(taken.call).decode() for taken in group]},
    )
    ids = [int(row[0]) for row in await cursor.fetchall()]
    await conn.execute(QUERIES["notify_work"], {"queue": queue})
    return list(zip(group, ids, strict=True))


async def _mark_requeued(conn: AsyncBoundedConnection, requeued: list[tuple[_Taken, int]]) -> None:
    await conn.execute(
        QUERIES["mark_requeued"],
        {
            "task_ids": [taken.call.task_id for taken, _ in requeued],
            "payload_ids": [taken.call.payload_id for taken, _ in requeued],
            "message_ids": [new_id for _, new_id in requeued],
            "payloads": [
                _encode(taken.call.data).decode() if taken.rewritten else None
                for taken, _ in requeued
            ],
        },
    )


def _take(dlq_message_id: int, text: str, rewrite: Rewrite | None) -> _Taken | None:
    """The call a dead letter holds, rewritten; None (logged, left in place) if not a taskq call."""
    try:
        call = _decode_call(text)
        UUID(call.task_id)
    except (msgspec.DecodeError, ValueError) as error:
        logger.warning(
            "DLQ message {} is not a taskq call, left in place: {}", dlq_message_id, error
        )
        return None
    if rewrite is None:
        return _Taken(dlq_message_id, call, rewritten=False)
    return _Taken(dlq_message_id, rewrite(call), rewritten=True)


def _dead_letter(row: _DeadRow) -> DeadLetter:
    try:
        call: QueuedCall | None = _decode_call(row.message)
    except msgspec.DecodeError:
        call = None
    try:
        headers = msgspec.json.decode(row.headers or "{}", type=_Headers)
    except msgspec.DecodeError:
        headers = _Headers()
    return DeadLetter(
        message_id=row.msg_id,
        task_id=call.task_id if call else None,
        payload_id=call.payload_id if call else None,
        task_type=call.task_type if call else None,
        item_id=call.item_id if call else None,
        error=headers.error,
        http_status=headers.http_status,
        attempts=None if headers.attempt is None else headers.attempt + 1,
        failed_at=row.enqueued_at,
        call=None if call is None else _redacted(call),
    )


def _redacted(call: QueuedCall) -> DeadLetterCall:
    headers = redact_headers(call.headers)
    assert isinstance(headers, dict)
    return DeadLetterCall(
        url=redact_url(call.url),
        method=call.method,
        headers=headers,
        data=call.data,
        timeout_ms=call.timeout_ms,
        max_retries=call.max_retries,
        retry_delay_ms=call.retry_delay_ms,
    )


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True
