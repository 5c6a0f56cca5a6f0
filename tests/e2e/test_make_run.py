"""`make run` (`python -m taskq_dev.devrun`) as a person runs it: real processes, real signals.

The service group is first checked with stand-in children (so its rules hold
whatever the services do), then with the real API and worker against the
test database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from taskq_core.settings import Settings
from taskq_dev.devrun import announcement
from taskq_dev.localpg import LocalPostgres, port_is_free
from tests.support.target import wait_until

pytestmark = pytest.mark.e2e

STAND_IN_SERVICE_GROUP = textwrap.dedent(
    """
    import os, sys
    from taskq_dev.devrun import Child, ServiceGroup

    CODE = {
        "sleeper": "pass",
        "stubborn": "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "crasher": "raise SystemExit(3)",
    }
    TEMPLATE = (
        "import os, pathlib, signal, sys, threading\\n{setup}\\n"
        "pathlib.Path(sys.argv[1], f'{kind}-{{os.getpid()}}').touch()\\n"
        "threading.Event().wait()\\n"
    )
    grace, markers, kinds = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
    children = [
        Child(kind, (sys.executable, "-c", TEMPLATE.format(setup=CODE[kind], kind=kind), markers))
        for kind in kinds
    ]
    services = ServiceGroup(
        children, environ=os.environ, grace_period=grace, announce=lambda: print("up", flush=True)
    )
    sys.exit(services.run())
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def all_gone(processes: list[psutil.Process]) -> bool:
    _gone, alive = psutil.wait_procs(processes, timeout=5)
    return not alive


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; killed with everything under them if the test failed early."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            for child in descendants(process.pid):
                child.kill()
            process.kill()
            process.wait()


def start_stand_ins(
    spawned: list[subprocess.Popen[bytes]], markers: Path, grace: float, *kinds: str
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", STAND_IN_SERVICE_GROUP, str(grace), str(markers), *kinds],
        stdout=subprocess.DEVNULL,
    )
    spawned.append(process)
    return process


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_stops_every_child_and_exits_zero(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]], stop_signal: signal.Signals
) -> None:
    group = start_stand_ins(spawned, tmp_path, 10.0, "sleeper", "sleeper")
    wait_until(lambda: len(list(tmp_path.iterdir())) == 2)
    children = descendants(group.pid)

    group.send_signal(stop_signal)

    assert group.wait(timeout=10) == 0
    assert len(children) == 2
    assert all_gone(children)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    group = start_stand_ins(spawned, tmp_path, 0.5, "stubborn", "sleeper")
    wait_until(lambda: len(list(tmp_path.iterdir())) == 2)
    children = descendants(group.pid)

    started = time.monotonic()
    group.send_signal(signal.SIGINT)

    assert group.wait(timeout=10) == 0
    assert time.monotonic() - started >= 0.5
    assert all_gone(children)


def test_a_child_dying_on_its_own_stops_the_others_and_exits_non_zero(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    group = start_stand_ins(spawned, tmp_path, 10.0, "sleeper", "crasher")
    wait_until(lambda: any(tmp_path.iterdir()))
    survivors = descendants(group.pid)

    assert group.wait(timeout=10) == 1
    assert all_gone(survivors)


def api_live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_make_run(
    spawned: list[subprocess.Popen[bytes]],
    db_dsn: str | None,
    output: Path,
    *,
    cwd: Path | None = None,
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """`make run` on free ports, in its own session (as from a terminal).

    With `db_dsn` None, POSTGRES_DSN is unset and it must start its own PostgreSQL.
    """
    port = port or free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_PORT": str(free_port()),
        "SHUTDOWN_GRACE_PERIOD": "10s",
        "LOG_FORMAT": "text",
    }
    env.pop("POSTGRES_DSN", None)
    if db_dsn is not None:
        env["POSTGRES_DSN"] = db_dsn
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskq_dev.devrun"],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    spawned.append(process)
    return process, port


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_make_run_serves_the_api_and_stops_both_services_cleanly(
    db_dsn: str, tmp_path: Path, spawned: list[subprocess.Popen[bytes]], how: str
) -> None:
    output = tmp_path / "make-run.log"
    devrun, port = start_make_run(spawned, db_dsn, output)

    wait_until(lambda: api_live(port) or devrun.poll() is not None, timeout=60)
    assert devrun.poll() is None, output.read_text()
    wait_until(lambda: "taskq is running" in output.read_text())
    assert f"http://127.0.0.1:{port}" in output.read_text()
    children = psutil.Process(devrun.pid).children()
    names = sorted(Path(child.cmdline()[1]).name for child in children)
    assert names == ["taskq-api", "taskq-worker"]
    everything = descendants(devrun.pid)

    if how == "ctrl-c":
        os.killpg(devrun.pid, signal.SIGINT)  # a terminal sends Ctrl-C to the whole group
    else:
        devrun.send_signal(signal.SIGTERM)  # a process manager signals the parent only

    assert devrun.wait(timeout=30) == 0, output.read_text()
    assert all_gone(everything)
    assert port_is_free("127.0.0.1", port)


@pytest.mark.slow
def test_make_run_stops_the_api_when_the_worker_dies(
    db_dsn: str, tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    output = tmp_path / "make-run.log"
    devrun, port = start_make_run(spawned, db_dsn, output)
    wait_until(lambda: api_live(port) or devrun.poll() is not None, timeout=60)
    assert devrun.poll() is None, output.read_text()
    everything = descendants(devrun.pid)
    worker = next(
        child
        for child in psutil.Process(devrun.pid).children()
        if Path(child.cmdline()[1]).name == "taskq-worker"
    )

    worker.kill()

    assert devrun.wait(timeout=30) != 0
    assert all_gone(everything)
    assert "taskq-worker exited" in output.read_text()


@pytest.mark.slow
@pytest.mark.serial  # its server takes the preferred port 54329: see test_localpg.py
def test_make_run_without_postgres_dsn_runs_and_stops_its_own_postgresql(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    project = Path(tempfile.mkdtemp(prefix="taskq-make-run-"))
    project.chmod(0o755)  # as root the server runs as another user, who must enter it
    try:
        output = tmp_path / "make-run.log"
        devrun, port = start_make_run(spawned, None, output, cwd=project)
        wait_until(
            lambda: "taskq is running" in output.read_text() or devrun.poll() is not None,
            timeout=60,
        )
        assert devrun.poll() is None, output.read_text()
        local = LocalPostgres(project / ".taskq" / "pg")
        assert local.running_port() is not None
        assert "local PostgreSQL" in output.read_text()
        assert api_live(port)

        os.killpg(devrun.pid, signal.SIGINT)

        assert devrun.wait(timeout=30) == 0, output.read_text()
        assert local.running_port() is None
    finally:
        LocalPostgres(project / ".taskq" / "pg").stop()
        shutil.rmtree(project)


def test_make_run_refuses_a_port_in_use_with_one_clear_line(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        output = tmp_path / "make-run.log"
        # No database is reachable there: the port check must come before anything starts.
        devrun, _port = start_make_run(
            spawned, "postgresql://postgres@127.0.0.1:1/none", output, port=port
        )

        assert devrun.wait(timeout=30) == 1
    assert f"PORT={port} is already in use" in output.read_text()


def test_the_announcement_says_where_things_are_without_the_database_password() -> None:
    settings = Settings(postgres_dsn="postgresql://taskq:s3cret@db.internal:5432/taskq", port=8081)

    line = announcement(settings, local_folder=None)

    assert "s3cret" not in line
    assert "db.internal" in line
    assert "http://127.0.0.1:8081/schema/swagger" in line
