"""The API behind a real PgBouncer in transaction mode (docs/scaling.md).

psycopg prepares a statement after 5 executions; through transaction pooling the
next transaction may land on a server session that never saw it. DB_POOLER=
transaction turns that off and stops sending the `options` startup parameter,
which PgBouncer refuses. Each route is called well past the threshold, over a
pool of 4 server connections shared by the API's 10.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import httpx
import pytest

from taskq_core.settings import Settings
from tests.support.api import batch
from tests.support.api_process import running_api
from tests.support.pgbouncer import binary, running_pgbouncer
from tests.support.processes import BIN, settings_environment

pytestmark = [pytest.mark.e2e]

ROUNDS = 30
"""Calls of each route: six times psycopg's prepare threshold (5)."""
TASK_TYPE = "pooled"


@pytest.fixture
def pgbouncer() -> Path:
    found = binary()
    if isinstance(found, str):
        pytest.skip(found)
    return found


def exercise(client: httpx.Client) -> list[str]:
    """Every read and write route the API has, ROUNDS times; the failures, as text."""
    failures: list[str] = []

    def check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            failures.append(f"{response.request.method} {response.request.url.path}: "
                            f"{response.status_code} {response.text[:300]}")  # fmt: skip
        return response

    for n in range(ROUNDS):
        submitted = check(client.post("/tasks", json=batch(3, task_type=TASK_TYPE)))
        task_id = submitted.json().get("task_id") if submitted.status_code == 201 else None
        if task_id:
            check(client.get(f"/tasks/{task_id}"))
        check(client.get("/tasks", params={"task_type": TASK_TYPE, "limit": 10}))
        check(client.get("/dlq"))
        check(client.get("/task-types"))
        check(client.get(f"/task-types/{TASK_TYPE}"))
        check(client.patch(f"/task-types/{TASK_TYPE}", json={"max_rps": 10 + n}))
    return failures


def test_the_api_works_through_transaction_pooling_with_db_pooler_transaction(
    pgbouncer: Path, settings: Settings, tmp_path: Path
) -> None:
    with running_pgbouncer(pgbouncer, settings.postgres_dsn, tmp_path / "pgbouncer.log") as dsn:
        pooled = dataclasses.replace(settings, postgres_dsn=dsn)
        with (
            running_api(pooled, tmp_path / "api.log", DB_POOLER="transaction") as (base_url, _),
            httpx.Client(base_url=base_url, timeout=15) as client,
        ):
            assert exercise(client) == []
            listed = client.get("/tasks", params={"task_type": TASK_TYPE, "limit": 100}).json()
            assert len(listed["tasks"]) == ROUNDS


def test_without_it_pgbouncer_refuses_the_connections(
    pgbouncer: Path, settings: Settings, tmp_path: Path
) -> None:
    """The server-side timeouts travel as `options`, a startup parameter PgBouncer refuses."""
    with running_pgbouncer(pgbouncer, settings.postgres_dsn, tmp_path / "pgbouncer.log") as dsn:
        pooled = dataclasses.replace(settings, postgres_dsn=dsn)
        with (
            running_api(pooled, tmp_path / "api.log") as (base_url, _),
            httpx.Client(base_url=base_url, timeout=15) as client,
        ):
            answer = client.post("/tasks", json=batch(1, task_type=TASK_TYPE))
            assert answer.status_code == 503
            assert client.get("/health/ready").status_code == 503
        assert "unsupported startup parameter: options" in (tmp_path / "api.log").read_text()


def test_without_it_prepared_statements_break_where_options_are_ignored(
    pgbouncer: Path, settings: Settings, tmp_path: Path
) -> None:
    """With PgBouncer told to drop `options` (and so the timeouts), psycopg's prepared
    statements break past the threshold: what DB_POOLER=transaction prevents."""
    with running_pgbouncer(
        pgbouncer,
        settings.postgres_dsn,
        tmp_path / "pgbouncer.log",
        ignore_startup_parameters="options",
    ) as dsn:
        pooled = dataclasses.replace(settings, postgres_dsn=dsn)
        with (
            running_api(pooled, tmp_path / "api.log") as (base_url, _),
            httpx.Client(base_url=base_url, timeout=15) as client,
        ):
            failures = exercise(client)
    assert failures
    assert all(" 500 " in failure and 'prepared statement \\"_pg3_' in failure
               for failure in failures), failures  # fmt: skip


@pytest.mark.parametrize(
    ("command", "process"),
    [("taskq-worker", "the worker"), ("taskq-migrate", "the migrate job")],
)
def test_the_worker_and_migrate_refuse_a_transaction_pooler(
    settings: Settings, command: str, process: str
) -> None:
    """They hold sessions (LISTEN, session advisory locks): behind transaction pooling a
    lock stays with a pooled server session after they exit, and notifications go astray."""
    environment = settings_environment(settings, DB_POOLER="transaction")
    finished = subprocess.run(
        [str(BIN / command)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert f"invalid DB_POOLER='transaction': {process} holds a PostgreSQL session" in (
        finished.stderr
    )
