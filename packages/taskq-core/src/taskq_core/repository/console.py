"""What only the web console reads: recent outcomes per task type and minute, for its chart."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import class_row

from taskq_core.database import AsyncPool
from taskq_core.queries import QUERIES
from taskq_core.repository.pooled import pooled_connection


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """Messages of a type that reached `status` (success or failed) `minutes_ago` minutes ago."""

    task_type: str
    status: str
    minutes_ago: int
    messages: int


class ConsoleRepository:
    def __init__(self, pool: AsyncPool) -> None:
        self._pool = pool

    async def outcomes(self, minutes: int) -> list[OutcomeCount]:
        async with pooled_connection(self._pool) as conn:
            cursor = conn.cursor(row_factory=class_row(OutcomeCount))
            await cursor.execute(QUERIES["console_outcomes"], {"minutes": minutes})
            return await cursor.fetchall()
