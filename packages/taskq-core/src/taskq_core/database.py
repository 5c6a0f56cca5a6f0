"""The one way taskq connects to PostgreSQL and the one place driver errors become taskq errors.

A database that accepts TCP but never answers (a frozen VM, a stopped
process, a dead link) must not hang a request or a worker thread. The
server-side limits (statement and idle-in-transaction timeouts) only help
while the server runs, and keepalives or TCP_USER_TIMEOUT only when the peer's
kernel is gone too, so every round trip also has a client-side deadline:
`BoundedConnection.wait` gives up `RESPONSE_MARGIN` seconds after the
statement timeout, and the pool discards the connection it was on.

Behind a transaction-mode pooler (DB_POOLER=transaction, docs/scaling.md) a
connection is a different server session from one transaction to the next, so
nothing may outlive a transaction: psycopg's automatic prepared statements
(after `prepare_threshold` executions) are turned off, and the server-side
timeouts are not sent as the `options` startup parameter, which PgBouncer
refuses ("unsupported startup parameter: options").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from taskq_core.errors import DatabaseError, DatabaseUnavailableError
from taskq_core.settings import Settings

RV = TypeVar("RV")

RESPONSE_MARGIN = 1.0
"""Seconds the client waits beyond the statement timeout, so the server's own error wins."""
WAIT_INTERVAL = 0.1
"""psycopg's poll interval (its default): how often a waiting call looks at its deadline."""


@dataclass(frozen=True, slots=True)
class DatabaseLimits:
    """How long taskq waits for the database at each step; seconds, from the DB_* settings."""

    connect_timeout: float = 3.0
    statement_timeout: float = 5.0
    idle_in_transaction_timeout: float = 30.0
    pool_timeout: float = 3.0
    tcp_user_timeout: float = 10.0
    keepalives_idle: float = 10.0
    keepalives_interval: float = 5.0
    keepalives_count: int = 3
    transaction_pooler: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseLimits:
        return cls(
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.db_statement_timeout,
            idle_in_transaction_timeout=settings.db_idle_in_transaction_timeout,
            pool_timeout=settings.db_pool_timeout,
            tcp_user_timeout=settings.db_tcp_user_timeout,
            keepalives_idle=settings.db_keepalives_idle,
            keepalives_interval=settings.db_keepalives_interval,
            keepalives_count=settings.db_keepalives_count,
            transaction_pooler=settings.db_pooler == "transaction",
        )

    @property
    def response_timeout(self) -> float:
        """The client-side bound on one round trip."""
        return self.statement_timeout + RESPONSE_MARGIN


class BoundedConnection(psycopg.Connection[TupleRow]):
    """A sync connection whose every round trip ends by `response_timeout` seconds."""

    response_timeout: float | None = None

    def wait(
        self, gen: PQGen[RV], interval: float = WAIT_INTERVAL, timeout: float | None = None
    ) -> RV:
        return super().wait(gen, interval, self.response_timeout if timeout is None else timeout)


class AsyncBoundedConnection(psycopg.AsyncConnection[TupleRow]):
    """An async connection whose every round trip ends by `response_timeout` seconds."""

    response_timeout: float | None = None

    async def wait(
        self, gen: PQGen[RV], interval: float = WAIT_INTERVAL, timeout: float | None = None
    ) -> RV:
        return await super().wait(
            gen, interval, self.response_timeout if timeout is None else timeout
        )


SyncPool = ConnectionPool[BoundedConnection]
AsyncPool = AsyncConnectionPool[AsyncBoundedConnection]


def connection_kwargs(dsn: str, limits: DatabaseLimits, *, application_name: str) -> dict[str, Any]:
    """psycopg's connect arguments for `dsn` with taskq's timeouts; options in the DSN are kept."""
    kwargs = {
        # libpq takes whole seconds and reads 1 as 2.
        "connect_timeout": max(2, round(limits.connect_timeout)),
        "keepalives": 1,
        "keepalives_idle": max(1, round(limits.keepalives_idle)),
        "keepalives_interval": max(1, round(limits.keepalives_interval)),
        "keepalives_count": limits.keepalives_count,
        "tcp_user_timeout": _millis(limits.tcp_user_timeout),
        "application_name": application_name,
    }
    if limits.transaction_pooler:
        # A statement prepared on one server session is missing on the next
        # ('prepared statement "_pg3_0" does not exist'); None never prepares.
        return {**kwargs, "prepare_threshold": None}
    server_limits = (
        f"-c statement_timeout={_millis(limits.statement_timeout)} "
        f"-c idle_in_transaction_session_timeout={_millis(limits.idle_in_transaction_timeout)}"
    )
    existing = str(conninfo_to_dict(dsn).get("options") or "").strip()
    return {**kwargs, "options": f"{existing} {server_limits}".strip()}


def create_pool(
    settings: Settings, *, name: str, min_size: int = 1, max_size: int | None = None
) -> SyncPool:
    """A closed sync pool (the worker's); open it when the process starts."""
    limits = DatabaseLimits.from_settings(settings)

    def configure(conn: BoundedConnection) -> None:
        conn.response_timeout = limits.response_timeout

    return ConnectionPool(
        settings.postgres_dsn,
        connection_class=BoundedConnection,
        configure=configure,
        **_pool_arguments(settings, limits, name=name, min_size=min_size, max_size=max_size),
    )


def create_async_pool(
    settings: Settings,
    *,
    name: str,
    min_size: int = 1,
    max_size: int | None = None,
    check: Callable[[AsyncBoundedConnection], Awaitable[None]] | None = None,
) -> AsyncPool:
    """A closed async pool (the API's); open it in the application's lifespan.

    `check` runs on every new connection; one it raises on is closed, not used.
    """
    limits = DatabaseLimits.from_settings(settings)

    async def configure(conn: AsyncBoundedConnection) -> None:
        conn.response_timeout = limits.response_timeout
        if check is not None:
            try:
                await check(conn)
            except Exception:
                await conn.close()
                raise

    return AsyncConnectionPool(
        settings.postgres_dsn,
        connection_class=AsyncBoundedConnection,
        configure=configure,
        **_pool_arguments(settings, limits, name=name, min_size=min_size, max_size=max_size),
    )


def _pool_arguments(
    settings: Settings, limits: DatabaseLimits, *, name: str, min_size: int, max_size: int | None
) -> dict[str, Any]:
    """What the sync and the async pool are built with alike: sizes, timeouts, libpq options."""
    return {
        "kwargs": connection_kwargs(settings.postgres_dsn, limits, application_name=name),
        "min_size": min_size,
        "max_size": max_size or max(min_size, settings.db_pool_size),
        "timeout": limits.pool_timeout,
        "open": False,
        "name": name,
    }


def connect(settings: Settings, *, name: str, autocommit: bool = True) -> BoundedConnection:
    """One connection outside any pool (a listener, a lock holder), with the same limits."""
    limits = DatabaseLimits.from_settings(settings)
    with database_errors():
        conn = BoundedConnection.connect(
            settings.postgres_dsn,
            autocommit=autocommit,
            **connection_kwargs(settings.postgres_dsn, limits, application_name=name),
        )
    conn.response_timeout = limits.response_timeout
    return conn


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate psycopg errors raised inside the block into taskq errors.

    Unreachable, frozen or restarting (no connection in time, a cut or timed-out
    round trip, a server shutting down): DatabaseUnavailableError, worth retrying
    shortly. Anything else the driver raises: DatabaseError with its SQLSTATE.
    Works around async blocks too: it only sees the exception on its way out.
    It logs nothing: whoever handles the error does, once (the API's error
    handler, the worker's supervision, a task type set aside).
    """
    try:
        yield
    except PoolTimeout as error:
        raise DatabaseUnavailableError(
            f"the database is unreachable ({error}); try again shortly"
        ) from error
    except psycopg.OperationalError as error:
        raise DatabaseUnavailableError(
            f"the database is unreachable ({first_line(error)}); try again shortly"
        ) from error
    except psycopg.Error as error:
        raise DatabaseError(
            f"database error: {first_line(error)}", sqlstate=error.sqlstate
        ) from error


def first_line(error: BaseException) -> str:
    """The first line of an error's text (libpq's messages run over several), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))
