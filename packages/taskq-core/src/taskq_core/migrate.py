"""Brings a database up to the schema this code expects: PGMQ, taskq's tables, the DLQ.

Safe to run twice and from several replicas at once: everything happens under
one advisory lock and each numbered migration is applied once.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import psycopg
from loguru import logger
from pgmq.install import get_embedded_install_sql

from taskq_core.errors import MigrationError
from taskq_core.logs import configure_logging
from taskq_core.queries import QUERIES
from taskq_core.settings import Settings
from taskq_core.startup import load_settings_or_exit

BACKWARD_COMPATIBLE_MARKER = "-- compatible: backward"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def backward_compatible(self) -> bool:
        """Whether code of the release before it runs correctly on the schema it leaves.

        Marked by a `-- compatible: backward` line in the file's leading comments;
        unmarked migrations are assumed to break older code.
        """
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                return False
            if line.strip().lower() == BACKWARD_COMPATIBLE_MARKER:
                return True
        return False


def bundled_migrations() -> list[Migration]:
    """The numbered `sql/migrations/NNNN_name.sql` files, in order."""
    folder = files("taskq_core").joinpath("sql", "migrations")
    migrations = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        migrations.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(migrations, key=lambda migration: migration.version)


def migrate(dsn: str, *, dlq_queue_name: str) -> list[Migration]:
    """Apply what is missing; return the migrations applied by this call."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(QUERIES["migrate_lock"])
            try:
                _install_pgmq(conn)
                applied = _apply_migrations(conn)
                _ensure_queue(conn, dlq_queue_name)
            finally:
                conn.execute(QUERIES["migrate_unlock"])
    except psycopg.Error as error:
        raise MigrationError(f"migration failed: {error}") from error
    return applied


def _install_pgmq(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    installed = conn.execute(QUERIES["pgmq_installed"]).fetchone()
    if installed and installed[0]:
        return
    available = conn.execute(QUERIES["pgmq_extension_available"]).fetchone()
    with conn.transaction():
        if available and available[0]:
            logger.info("installing PGMQ as an extension")
            conn.execute(QUERIES["create_pgmq_extension"])
        else:
            logger.info("installing PGMQ from the SQL bundled in the pgmq package")
            # The script ships inside the pgmq wheel: as trusted as a literal.
            conn.execute(get_embedded_install_sql())


def _apply_migrations(conn: psycopg.Connection[tuple[object, ...]]) -> list[Migration]:
    conn.execute(QUERIES["migrations_prepare"])
    done = {row[0] for row in conn.execute(QUERIES["applied_migrations"]).fetchall()}
    applied = []
    for migration in bundled_migrations():
        if migration.version in done:
            continue
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(
                QUERIES["record_migration"],
                {
                    "version": migration.version,
                    "name": migration.name,
                    "backward_compatible": migration.backward_compatible,
                },
            )
        logger.info("applied migration {:04d} {}", migration.version, migration.name)
        applied.append(migration)
    return applied


def _ensure_queue(conn: psycopg.Connection[tuple[object, ...]], queue: str) -> None:
    present = conn.execute(QUERIES["queue_exists"], {"queue": queue}).fetchone()
    if not (present and present[0]):
        conn.execute(QUERIES["create_queue"], {"queue": queue})
        logger.info("created queue {}", queue)


def run(settings: Settings) -> None:
    """Migrate the database that `settings` points at."""
    applied = migrate(settings.postgres_dsn, dlq_queue_name=settings.dlq_queue_name)
    logger.info("database is up to date ({} migration(s) applied now)", len(applied))


def main() -> None:
    """Console entry point `taskq-migrate`."""
    settings = load_settings_or_exit(holds_a_session="the migrate job")
    configure_logging(settings)
    try:
        run(settings)
    except MigrationError as error:
        logger.error("{}", error)
        raise SystemExit(1) from error
