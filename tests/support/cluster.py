"""Stopping and restarting a PostgreSQL cluster of the test's own under a running test.

The shared server on 5432 is never stopped: other test runs on the machine use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from taskq_dev.localpg import LocalPostgres


def restart_cluster(server: LocalPostgres) -> None:
    """A fast restart (open connections are cut) on the same port."""
    server.stop()
    server.start()


@contextmanager
def cluster_down(server: LocalPostgres) -> Iterator[None]:
    """The cluster stopped for the duration of the block, and always started again after it."""
    server.stop()
    try:
        yield
    finally:
        server.start()
