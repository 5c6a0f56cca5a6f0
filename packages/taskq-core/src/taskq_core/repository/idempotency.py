"""Idempotency-Key statements, run inside the submission's own transaction.

Claiming the key and queueing the batch commit together, so a key is never
recorded for a batch that was not queued, nor a batch queued twice for a key.
"""

from __future__ import annotations

from uuid import UUID

from taskq_core.database import AsyncBoundedConnection
from taskq_core.errors import IdempotencyConflictError
from taskq_core.idempotency import HEADER, IdempotencyClaim
from taskq_core.models import TaskCreated
from taskq_core.queries import QUERIES


async def claim_key(conn: AsyncBoundedConnection, claim: IdempotencyClaim) -> bool:
    """True when this transaction now owns the key (new, or its last use expired).

    Waits while another open transaction holds the same key.
    """
    cursor = await conn.execute(
        QUERIES["claim_idempotency_key"],
        {"key": claim.key, "body_hash": claim.body_hash, "ttl_seconds": claim.ttl_seconds},
    )
    return await cursor.fetchone() is not None


async def record_answer(
    conn: AsyncBoundedConnection, key: str, task_id: UUID, message_ids: list[int]
) -> None:
    """Keep the 201 answer for repeats of the key."""
    await conn.execute(
        QUERIES["record_idempotent_answer"],
        {"key": key, "task_id": task_id, "message_ids": message_ids},
    )


async def stored_answer(
    conn: AsyncBoundedConnection, claim: IdempotencyClaim
) -> TaskCreated | None:
    """The first answer for the key; None if it expired meanwhile.

    IdempotencyConflictError when the key first came with another body.
    """
    cursor = await conn.execute(QUERIES["idempotent_answer"], {"key": claim.key})
    row = await cursor.fetchone()
    if row is None:
        return None
    stored_hash, task_id, message_ids = row
    if bytes(stored_hash) != claim.body_hash:
        raise IdempotencyConflictError(
            HEADER,
            "was already used with a different request body; use a new key for a different batch",
        )
    if task_id is None:  # pragma: no cover - claimed and answered in one transaction
        return None
    return TaskCreated(task_id=task_id, message_ids=[int(m) for m in message_ids])
