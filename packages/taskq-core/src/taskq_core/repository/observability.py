"""Queue state for metrics and autoscaling: depth, age and retries per task type, DLQ depth.

Read by one replica at a time (the holder of a session advisory lock), so many
workers do not all scan the queues every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg.rows import class_row

from taskq_core.database import BoundedConnection, connect, database_errors
from taskq_core.errors import DatabaseUnavailableError
from taskq_core.queries import QUERIES
from taskq_core.settings import Settings


@dataclass(frozen=True, slots=True)
class QueueStats:
    task_type: str
    queue_length: int
    queue_visible_length: int
    oldest_age_seconds: int
    retrying: int
    max_rps: float | None  # None: no limit
    paused: bool = False
    allowed_rps: float | None = None  # max_rps lowered by pacing or the adaptive rate


@dataclass(frozen=True, slots=True)
class DlqStats:
    queue_length: int
    oldest_age_seconds: int


@dataclass(frozen=True, slots=True)
class HostCircuitStats:
    host: str  # host:port
    state: str  # closed, open, half_open
    times_opened: int


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    queues: list[QueueStats]
    dlq: DlqStats
    hosts: list[HostCircuitStats] = field(default_factory=list)


class QueueStatsReader:
    """Holds one connection (and with it the exporter lock) while this replica exports."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._dlq = settings.dlq_queue_name
        self._conn: BoundedConnection | None = None
        self._exporter = False

    def snapshot(self) -> QueueSnapshot | None:
        """The queue state, or None when another replica is the exporter."""
        try:
            with database_errors():
                return self._read()
        except DatabaseUnavailableError:
            self.close()
            raise

    def _read(self) -> QueueSnapshot | None:
        conn = self._connection()
        if not self._exporter:
            # Session locks stack, so take it once and keep it with the connection.
            acquired = conn.execute(QUERIES["queue_stats_lock"]).fetchone()
            self._exporter = bool(acquired and acquired[0])
        if not self._exporter:
            return None
        queues = (
            conn.cursor(row_factory=class_row(QueueStats))
            .execute(QUERIES["queue_stats"])
            .fetchall()
        )
        dlq = (
            conn.cursor(row_factory=class_row(DlqStats))
            .execute(QUERIES["dlq_stats"], {"dlq": self._dlq})
            .fetchone()
        )
        hosts = (
            conn.cursor(row_factory=class_row(HostCircuitStats))
            .execute(QUERIES["host_circuit_stats"])
            .fetchall()
        )
        return QueueSnapshot(queues, dlq or DlqStats(0, 0), hosts)

    def close(self) -> None:
        self._exporter = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> BoundedConnection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._settings, name="taskq-queue-stats")
        return self._conn
