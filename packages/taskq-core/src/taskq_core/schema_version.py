"""Whether the database's applied migrations suit this code, checked by the API and the worker.

Behind (a migration this code needs is missing): refuse to run and say which
one and that `taskq-migrate` applies it. Ahead (the database has migrations
this code does not know, from a newer release): run only if each of them is
marked backward compatible (a `-- compatible: backward` line in the migration
file's header, recorded when it is applied), so a rolling upgrade can migrate
first and then replace old replicas (docs/deploying.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from loguru import logger

from taskq_core.database import connect, database_errors
from taskq_core.errors import SchemaMismatchError
from taskq_core.migrate import Migration, bundled_migrations
from taskq_core.queries import QUERIES
from taskq_core.settings import Settings


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    backward_compatible: bool


def read_applied(conn: psycopg.Connection[tuple[object, ...]]) -> list[AppliedMigration]:
    """The migrations recorded in the database; none if it was never migrated."""
    try:
        rows = conn.execute(QUERIES["applied_migrations_compatibility"]).fetchall()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return []
    return _applied(rows)


async def read_applied_async(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
) -> list[AppliedMigration]:
    """`read_applied` over an async connection (the API's pool)."""
    try:
        cursor = await conn.execute(QUERIES["applied_migrations_compatibility"])
        rows = await cursor.fetchall()
    except psycopg.errors.UndefinedTable:
        await conn.rollback()
        return []
    return _applied(rows)


def _applied(rows: Sequence[tuple[object, ...]]) -> list[AppliedMigration]:
    return [AppliedMigration(int(v), str(n), bool(c)) for v, n, c in rows]  # type: ignore[call-overload]


def check_compatible(
    applied: Sequence[AppliedMigration], known: Sequence[Migration] | None = None
) -> None:
    """Raise SchemaMismatchError (one line) unless this code can run on `applied`."""
    known = bundled_migrations() if known is None else known
    done = {migration.version for migration in applied}
    missing = [migration for migration in known if migration.version not in done]
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise SchemaMismatchError(
            f"database schema is behind this taskq: migration {names} not applied; "
            "run taskq-migrate first"
        )
    versions = {migration.version for migration in known}
    newer = [migration for migration in applied if migration.version not in versions]
    blocking = [migration for migration in newer if not migration.backward_compatible]
    if blocking:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in blocking)
        raise SchemaMismatchError(
            f"database schema is ahead of this taskq: migration {names} is not marked "
            "backward compatible; run the taskq release that brought it"
        )
    if newer:
        logger.info(
            "database has newer migrations ({}), all backward compatible: running",
            ", ".join(f"{m.version:04d}_{m.name}" for m in newer),
        )


def check_database(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Read the applied migrations over `conn` and check them (SchemaMismatchError if unfit)."""
    check_compatible(read_applied(conn))


async def check_new_connection(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """Check over each new pooled connection of the API: after a reconnect, the schema may differ.

    A mismatch discards the connection (requests answer 503 meanwhile); the
    pool's own log line carries this check's message.
    """
    try:
        check_compatible(await read_applied_async(conn))
    finally:
        await conn.rollback()  # the pool takes only idle connections


def check_at_start(settings: Settings, *, name: str) -> None:
    """Check the database over a connection of its own (a process about to start).

    SchemaMismatchError if this code cannot run on it; DatabaseUnavailableError
    if it cannot be reached (then the caller starts anyway and reports not-ready).
    """
    with connect(settings, name=name) as conn, database_errors():
        check_database(conn)
