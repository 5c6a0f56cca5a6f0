"""A connection from the API's async pool, driver errors translated by `database_errors`.

Shared by the API's repositories (api, operations, dlq) so that how a
request borrows a connection is written once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from taskq_core.database import AsyncBoundedConnection, AsyncPool, database_errors


@asynccontextmanager
async def pooled_connection(
    pool: AsyncPool, timeout: float | None = None
) -> AsyncIterator[AsyncBoundedConnection]:
    """A pool connection; `timeout` also bounds each round trip on it (readiness)."""
    with database_errors():
        async with pool.connection(timeout=timeout) as conn:
            if timeout is None:
                yield conn
                return
            default, conn.response_timeout = conn.response_timeout, timeout
            try:
                yield conn
            finally:
                conn.response_timeout = default
