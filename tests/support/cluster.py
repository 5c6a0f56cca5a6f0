"""Restarting the local PostgreSQL cluster under a running test, where the machine allows it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg.conninfo import conninfo_to_dict


def restart_blocker() -> str | None:
    """Why the test server cannot be restarted here, or None when it can."""
    # Parsed, not matched as text: 127.0.0.1:54329 is another server.
    params = conninfo_to_dict(os.environ.get("TASKQ_TEST_DSN", "port=0"))
    if params.get("host") not in {"127.0.0.1", "localhost"} or str(params.get("port")) != "5432":
        return "restarting needs TASKQ_TEST_DSN to be the local cluster on port 5432"
    if shutil.which("pg_ctlcluster") is None:
        return "pg_ctlcluster is not installed"
    if os.geteuid() != 0:
        return "restarting the cluster needs root"
    return None


def restart_cluster() -> None:
    """A fast restart (open connections are cut) of the `15 main` cluster."""
    _pg_ctlcluster("restart")


def _pg_ctlcluster(action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", action]
        + ([] if action == "start" else ["-m", "fast"]),
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def cluster_down() -> Iterator[None]:
    """The cluster stopped for the duration of the block, and always started again after it."""
    _pg_ctlcluster("stop")
    try:
        yield
    finally:
        _pg_ctlcluster("start")
