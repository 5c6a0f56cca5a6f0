"""PostgreSQL CPU spent for one database: its backends', sampled while they live.

A backend's CPU can be read only while it runs (/proc): read once at the end,
a client that had closed its connections (the peer, after its last job)
counted nothing, so a run read 0.001 CPU-s per 1,000 jobs instead of ~0.2.
The database's backends are therefore sampled in a thread and each keeps the
last value seen. Only that database's backends count (autovacuum's included):
the other clients of a shared server (other databases) and the bench's own
connections (application_name BENCH_APPLICATION) do not, nor do the server's
shared background processes (WAL writer, checkpointer).
"""

from __future__ import annotations

import contextlib
import threading

import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from taskq_dev.queries import DEV_QUERIES

BENCH_APPLICATION = "taskq-bench"
SAMPLE_SECONDS = 0.1  # CPU a backend spends after its last sample is missed


class DatabaseCpu:
    """CPU-seconds used by the backends of the database of `dsn` since this was created."""

    def __init__(self, dsn: str, admin_dsn: str) -> None:
        self._database = str(conninfo_to_dict(dsn).get("dbname", ""))
        # Connected to the admin database, so its own queries are not counted.
        self._conn = psycopg.connect(
            make_conninfo(admin_dsn, application_name=BENCH_APPLICATION), autocommit=True
        )
        self._lock = threading.Lock()
        self._first: dict[int, float] = {}  # CPU of the backends alive at the start
        self._last: dict[int, float] = {}  # the last CPU seen of each backend
        self._ended = 0.0  # CPU of backends whose pid was taken by a newer one
        self._sample(starting=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="database-cpu", daemon=True)
        self._thread.start()

    def seconds(self) -> float:
        """CPU-seconds so far (a last sample is taken first)."""
        self._sample()
        with self._lock:
            used = sum(cpu - self._first.get(pid, 0.0) for pid, cpu in self._last.items())
            return max(0.0, used + self._ended)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with contextlib.suppress(psycopg.Error):
                self._sample()

    def _sample(self, *, starting: bool = False) -> None:
        with self._lock:  # one connection, used by the thread and by seconds()
            rows = self._conn.execute(
                DEV_QUERIES["bench_database_backends"],
                {"database": self._database, "bench": BENCH_APPLICATION},
            ).fetchall()
            for (pid,) in rows:
                try:
                    times = psutil.Process(pid).cpu_times()
                except psutil.Error:
                    continue  # gone since the query: its last sample stands
                cpu = times.user + times.system
                if starting:
                    self._first[pid] = cpu
                elif cpu < self._last.get(pid, 0.0):  # a new backend with an old pid
                    self._ended += self._last[pid] - self._first.pop(pid, 0.0)
                self._last[pid] = cpu
