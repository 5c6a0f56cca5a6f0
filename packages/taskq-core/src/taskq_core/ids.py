"""Task ids: UUIDv7 (RFC 9562), time-ordered, so an id tells when its task was created.

Two uses: new status rows land at the right edge of the primary key index
instead of all over it, and GET /tasks/{id} can tell an id whose statuses
retention deleted (created before the retention period) from one that never
existed, without remembering deleted ids.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from uuid import UUID

_VERSION = 7


def new_task_id(now_ms: int | None = None) -> UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits."""
    milliseconds = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (milliseconds & ((1 << 48) - 1)) << 80
    value |= _VERSION << 76
    value |= ((random_bits >> 62) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # the RFC 4122 variant
    value |= random_bits & ((1 << 62) - 1)  # rand_b: 62 bits
    return UUID(int=value)


def created_at(task_id: UUID) -> datetime | None:
    """When a UUIDv7 was made; None for other versions (ids made before taskq used v7)."""
    if task_id.version != _VERSION:
        return None
    return datetime.fromtimestamp((task_id.int >> 80) / 1000, tz=UTC)
