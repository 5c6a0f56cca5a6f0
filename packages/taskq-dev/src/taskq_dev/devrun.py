"""`make run`: the whole service on one machine, in the foreground, with one command.

With POSTGRES_DSN unset a local PostgreSQL is started in `.taskq/pg` (and
stopped again at the end); the database is migrated; then the API and one
worker run as child processes, started as a container would start them (their
console scripts). Ctrl-C or SIGTERM stops both within SHUTDOWN_GRACE_PERIOD and
exits 0; a child that dies on its own takes the other down and exits non-zero,
so a broken service is never left half running.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from loguru import logger
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from taskq_core.errors import MigrationError, SettingsError, TaskqError
from taskq_core.logs import configure_logging
from taskq_core.migrate import run as run_migration
from taskq_core.settings import Settings
from taskq_dev.localpg import DEFAULT_FOLDER, LocalPostgres, LocalPostgresError, port_is_free

SERVICES = ("taskq-api", "taskq-worker")
POLL_INTERVAL = 0.2
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True, slots=True)
class Child:
    """A service to keep running: its name in messages and its command line."""

    name: str
    argv: tuple[str, ...]


def service_children() -> list[Child]:
    """The console scripts installed next to this interpreter (the project's .venv/bin)."""
    bin_folder = Path(sys.executable).parent
    return [Child(name, (str(bin_folder / name),)) for name in SERVICES]


class ServiceGroup:
    """Runs children until a signal asks to stop or one of them exits; then stops the rest."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        environ: Mapping[str, str],
        grace_period: float,
        ready: Callable[[], bool] = lambda: True,
        announce: Callable[[], None] = lambda: None,
    ) -> None:
        self.children = list(children)
        self.environ = dict(environ)
        self.grace_period = grace_period
        self.ready = ready
        self.announce = announce
        self._stop = threading.Event()
        self._force = threading.Event()

    def run(self) -> int:
        """Supervise in the foreground; 0 after a requested stop, 1 when a child died."""
        with self._signals_handled():
            processes = self._start_all()
            status = self._watch(processes)
            self._stop_all(processes)
        return status

    def _start_all(self) -> list[tuple[Child, subprocess.Popen[bytes]]]:
        processes: list[tuple[Child, subprocess.Popen[bytes]]] = []
        for child in self.children:
            try:
                process = subprocess.Popen(  # noqa: S603 - our own scripts
                    child.argv,
                    env=self.environ,
                    # Its own process group: a terminal's Ctrl-C reaches only this
                    # process, which then sends each child exactly one SIGTERM (a
                    # second signal means "exit now" to the worker).
                    process_group=0,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
                )
            except OSError as error:
                logger.error("cannot start {}: {}", child.name, error)
                self._stop_all(processes)
                raise SystemExit(1) from error
            logger.info("started {} (pid {})", child.name, process.pid)
            processes.append((child, process))
        return processes

    def _watch(self, processes: Sequence[tuple[Child, subprocess.Popen[bytes]]]) -> int:
        announced = False
        while not self._stop.is_set():
            for child, process in processes:
                code = process.poll()
                if code is not None and not self._stop.is_set():
                    logger.error("{} exited with status {}; stopping the others", child.name, code)
                    return 1
            if not announced and self.ready():
                self.announce()
                announced = True
            self._stop.wait(POLL_INTERVAL)
        return 0

    def _stop_all(self, processes: Sequence[tuple[Child, subprocess.Popen[bytes]]]) -> None:
        """SIGTERM every child, wait for them up to the grace period, then SIGKILL the rest."""
        for _child, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period
        for child, process in processes:
            while process.poll() is None and time.monotonic() < deadline:
                if self._force.is_set():
                    break
                try:
                    process.wait(timeout=POLL_INTERVAL)
                except subprocess.TimeoutExpired:
                    continue
            if process.poll() is None:
                logger.warning("{} did not stop in time; killing it", child.name)
                process.kill()
                process.wait()

    @contextmanager
    def _signals_handled(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask for a clean stop; a second one stops waiting for the children."""

        def request_stop(_signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():
                self._force.set()
            self._stop.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class PortInUseError(TaskqError):
    """A port a service must listen on is taken."""


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM it if `make run` dies, even by SIGKILL (Linux only).

    Without it a killed `make run` would leave the API holding its port.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def api_is_live(port: int) -> Callable[[], bool]:
    """A check that the API on 127.0.0.1:`port` answers its liveness probe."""
    url = f"http://127.0.0.1:{port}/health/live"

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return check


def display_dsn(dsn: str) -> str:
    """`dsn` without its password, fit for a terminal."""
    if "password" not in conninfo_to_dict(dsn):
        return dsn
    return make_conninfo(dsn, password="***")  # noqa: S106 - a mask, not a password


def announcement(settings: Settings, *, local_folder: Path | None) -> str:
    """The one line that tells a person where everything is."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    api = f"http://{host}:{settings.port}"
    where_db = display_dsn(settings.postgres_dsn)
    if local_folder is not None:
        where_db += f" (local PostgreSQL, data in {local_folder})"
    return (
        f"taskq is running: API {api} (Swagger UI {api}/schema/swagger), "
        f"worker metrics http://127.0.0.1:{settings.metrics_port}/metrics, "
        f"database {where_db}. Ctrl-C stops everything."
    )


def run(environ: Mapping[str, str], children: Sequence[Child]) -> int:
    """Everything `make run` does; returns the exit status."""
    env = dict(environ)
    settings = Settings.from_env(env)  # a bad setting stops us before anything starts
    configure_logging(settings)
    check_ports_free(settings)
    with ExitStack() as stack:
        local_folder: Path | None = None
        if not env.get("POSTGRES_DSN", "").strip():
            local_folder = DEFAULT_FOLDER
            server = stack.enter_context(LocalPostgres.in_directory(local_folder))
            env["POSTGRES_DSN"] = server.dsn
            settings = dataclasses.replace(settings, postgres_dsn=server.dsn)
        run_migration(settings)
        services = ServiceGroup(
            children,
            environ=env,
            grace_period=settings.shutdown_grace_period,
            ready=api_is_live(settings.port),
            announce=lambda: print(announcement(settings, local_folder=local_folder), flush=True),
        )
        return services.run()


def check_ports_free(settings: Settings) -> None:
    """Fail with one clear line when the API's or the worker's port is taken.

    Checked up front: otherwise the readiness probe could be answered by whatever
    holds the port, and `make run` would announce an API that is not its own.
    """
    for variable, port in (("PORT", settings.port), ("METRICS_PORT", settings.metrics_port)):
        if not port_is_free(settings.host, port):
            raise PortInUseError(
                f"{variable}={port} is already in use on {settings.host}; stop what "
                f"listens there or choose another port, e.g. {variable}={port + 1} make run"
            )


def main() -> None:
    """`python -m taskq_dev.devrun`."""
    # Until the service group takes over, SIGTERM unwinds like Ctrl-C so that a local
    # PostgreSQL started here is stopped again rather than left running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        status = run(os.environ, service_children())
    except SettingsError as error:
        print(f"taskq: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    except (LocalPostgresError, MigrationError, PortInUseError) as error:
        print(f"taskq: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # Ctrl-C before the services were up
    raise SystemExit(status)


if __name__ == "__main__":
    main()
