"""A real PgBouncer for tests, started on 127.0.0.1 in front of the test PostgreSQL.

The binary comes from Debian's `pgbouncer` package (.ci/run installs it; its
system service is never used); `binary()` says why it is missing so the test
can skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.processes import free_port, stop
from tests.support.target import wait_until

PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def binary() -> Path | str:
    """The pgbouncer binary, or the reason it cannot be used."""
    found = shutil.which("pgbouncer") or next((p for p in PATHS if os.access(p, os.X_OK)), None)
    if found is None:
        return (
            "pgbouncer not found: install Debian's `pgbouncer` package "
            "(apt-get install --no-install-recommends pgbouncer; .ci/run does)"
        )
    return Path(found)


@contextmanager
def running_pgbouncer(
    pgbouncer: Path,
    server_dsn: str,
    log: Path,
    *,
    pool_mode: str = "transaction",
    ignore_startup_parameters: str = "",
) -> Iterator[str]:
    """A DSN like `server_dsn` that goes through a PgBouncer in `pool_mode`; stopped on exit.

    Every database of the server is reachable through it under its own name.
    Authentication is `trust` for the server DSN's user (loopback only).
    """
    server = conninfo_to_dict(server_dsn)
    user = str(server.get("user") or "postgres")
    port = free_port()
    # PgBouncer refuses to run as root: then it switches to `nobody` (-u), which
    # must be able to read its configuration.
    folder = Path(tempfile.mkdtemp(prefix="taskq-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\n"
        # Four server connections, kept open and taken in turn (not the last used
        # first): one client's next transaction lands on another server session
        # even when requests come one at a time, as under real load.
        "default_pool_size = 4\nmin_pool_size = 4\nmax_client_conn = 200\nserver_round_robin = 1\n"
        f"ignore_startup_parameters = {ignore_startup_parameters}\n"
    )
    for written in folder.iterdir():
        written.chmod(0o644)
    command = [str(pgbouncer)]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    command.append(str(folder / "pgbouncer.ini"))
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    dsn = make_conninfo(server_dsn, host="127.0.0.1", port=port)
    try:
        wait_until(lambda: process.poll() is not None or _answers(dsn), timeout=15)
        assert process.poll() is None, log.read_text()
        yield dsn
    finally:
        stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False
