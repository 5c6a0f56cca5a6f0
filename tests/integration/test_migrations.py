"""Migrating an empty database gives the schema the code expects, once, even when raced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from taskq_core.migrate import bundled_migrations, migrate
from taskq_core.queries import QUERIES
from taskq_dev.queries import DEV_QUERIES
from tests.support.databases import DLQ, create_database, drop_database


@pytest.fixture
def empty_dsn(pg_admin_dsn: str) -> Iterator[str]:
    name = f"taskq_empty_{uuid.uuid4().hex[:10]}"
    yield create_database(pg_admin_dsn, name)
    drop_database(pg_admin_dsn, name)


def test_empty_database_gets_the_expected_schema(empty_dsn: str) -> None:
    applied = migrate(empty_dsn, dlq_queue_name=DLQ)
    assert [m.version for m in applied] == [m.version for m in bundled_migrations()]
    with psycopg.connect(empty_dsn) as conn:
        names = {row[0] for row in conn.execute(DEV_QUERIES["test_schema_objects"])}
        present = conn.execute(QUERIES["queue_exists"], {"queue": DLQ}).fetchone()
    assert {
        "task_types",
        "rate_buckets",
        "task_status",
        "schema_migrations",
        "take_tokens",
        "configure_rate",
        "task_status_retrying",
        "retrying_counts",
    } <= names
    assert present == (True,)


def test_migrating_twice_changes_nothing(empty_dsn: str) -> None:
    migrate(empty_dsn, dlq_queue_name=DLQ)
    assert migrate(empty_dsn, dlq_queue_name=DLQ) == []


def test_concurrent_migrations_apply_each_file_once(empty_dsn: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: migrate(empty_dsn, dlq_queue_name=DLQ), range(4)))
    assert sum(len(applied) for applied in results) == len(bundled_migrations())
    with psycopg.connect(empty_dsn) as conn:
        versions = [row[0] for row in conn.execute(DEV_QUERIES["test_applied_migrations"])]
    assert versions == [m.version for m in bundled_migrations()]
