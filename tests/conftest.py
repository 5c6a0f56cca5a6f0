"""Shared fixtures: a real PostgreSQL with PGMQ, one cloned database per test, real HTTP targets."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterator

import pytest
from loguru import logger

from taskq_core.settings import Settings
from tests.support.database_supply import DatabaseSupply
from tests.support.databases import DLQ, create_template, drop_database, server_dsn
from tests.support.loopback_only import guarded
from tests.support.target import Target


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    with server_dsn() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def template_database(pg_admin_dsn: str) -> Iterator[str]:
    name = create_template(pg_admin_dsn)
    yield name
    drop_database(pg_admin_dsn, name)


@pytest.fixture(scope="session")
def database_supply(pg_admin_dsn: str, template_database: str) -> Iterator[DatabaseSupply]:
    supply = DatabaseSupply(pg_admin_dsn, template_database)
    yield supply
    supply.close()


@pytest.fixture
def db_dsn(database_supply: DatabaseSupply) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name, dsn = database_supply.take()
    yield dsn
    database_supply.give_back(name)


@pytest.fixture
def settings(db_dsn: str) -> Settings:
    return Settings(
        postgres_dsn=db_dsn,
        dlq_queue_name=DLQ,
        host="127.0.0.1",
        retry_base_delay=0.05,
        retry_max_delay=1.0,
        timeout=2.0,
        log_format="text",
    )


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No in-process connect leaves the machine, whatever the code under test decides."""
    monkeypatch.setattr(socket.socket, "connect", guarded(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(socket.socket.connect_ex))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that call configure_logging: loguru and standard logging as they were after."""
    handlers, level = logging.root.handlers[:], logging.root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    sys.excepthook, threading.excepthook = hooks
    logger.remove()
    logger.configure(patcher=None)
    logger.add(sys.stderr)
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
