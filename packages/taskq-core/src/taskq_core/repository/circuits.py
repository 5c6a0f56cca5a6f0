"""Host circuit breakers in the database: the worker's batched writes and probe claims, the
API's listing (migration 0014, sql/queries/circuits.sql).

A worker writes once per recorder batch (never per call) and reads back, in the
same statement, every host that is not closed: its whole view of the breakers.
The write normally rides in the batch's outcome transaction (`host_calls`,
WorkerRepository.record); `record` is its own transaction, for when that failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from psycopg import Cursor
from psycopg.rows import class_row

from taskq_core.circuits import BreakerPolicy, CircuitState
from taskq_core.database import AsyncPool, BoundedConnection, SyncPool, database_errors
from taskq_core.operation_models import HostCircuit
from taskq_core.queries import QUERIES
from taskq_core.repository.pooled import pooled_connection


@dataclass(frozen=True, slots=True)
class HostTally:
    """One batch's calls to a host and how many of them failed."""

    calls: int
    failures: int


@dataclass(frozen=True, slots=True)
class HostState:
    """A host that is not closed; `open_for`: seconds until an open one may be probed."""

    host: str
    state: CircuitState
    open_for: float


@dataclass(frozen=True, slots=True)
class ProbeClaim:
    granted: bool
    state: HostState


@dataclass(frozen=True, slots=True)
class _StateRow:
    host: str
    state: str
    open_for: float

    def value(self) -> HostState:
        return HostState(self.host, CircuitState(self.state), float(self.open_for))


@dataclass(frozen=True, slots=True)
class HostCalls:
    """The statement adding a batch's calls to the breakers, run in a caller's transaction."""

    params: dict[str, object]

    def execute(self, conn: BoundedConnection) -> Cursor[_StateRow]:
        """Send it; in pipeline mode the rows are read (host_states) once the pipeline synced."""
        cursor = conn.cursor(row_factory=class_row(_StateRow))
        cursor.execute(QUERIES["record_host_calls"], self.params)
        return cursor


def host_states(cursor: Cursor[_StateRow]) -> list[HostState]:
    """Every host not closed, as record_host_calls answered."""
    return [row.value() for row in cursor.fetchall()]


class CircuitRepository:
    """The worker's side, over its connection pool."""

    def __init__(self, pool: SyncPool, policy: BreakerPolicy) -> None:
        self._pool = pool
        self._policy = policy

    def host_calls(self, tallies: Mapping[str, HostTally]) -> HostCalls:
        """A batch's calls per host, to be written with its outcomes."""
        policy = self._policy
        return HostCalls(
            {
                "hosts": list(tallies),
                "calls": [tally.calls for tally in tallies.values()],
                "failures": [tally.failures for tally in tallies.values()],
                "ratio": policy.failure_ratio,
                "min_calls": policy.min_calls,
                "window": policy.window,
                "cooldown": policy.cooldown,
                "probes": policy.probes,
            }
        )

    def record(self, tallies: Mapping[str, HostTally]) -> list[HostState]:
        """Add a batch's calls per host (a transaction of its own); every host not closed."""
        with self._connection() as conn:
            cursor = self.host_calls(tallies).execute(conn)
        return host_states(cursor)

    def not_closed(self) -> list[HostState]:
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_StateRow))
            return [row.value() for row in cursor.execute(QUERIES["host_circuits_not_closed"])]

    def claim_probe(self, host: str) -> ProbeClaim:
        """Ask for one of the BREAKER_PROBES calls a host past its cool-down may get."""
        params = {"host": host, "probes": self._policy.probes, "cooldown": self._policy.cooldown}
        with self._connection() as conn:
            row = conn.execute(QUERIES["claim_host_probe"], params).fetchone()
        if row is None:  # the function always answers one row
            return ProbeClaim(False, HostState(host, CircuitState.OPEN, self._policy.cooldown))
        granted, state, open_for = row
        return ProbeClaim(bool(granted), HostState(host, CircuitState(state), float(open_for)))

    @contextmanager
    def _connection(self) -> Iterator[BoundedConnection]:
        with database_errors(), self._pool.connection() as conn:
            yield conn


HOSTS_LISTED = 1000
"""GET /hosts shows at most this many (hosts not closed first)."""


async def list_hosts(pool: AsyncPool, limit: int = HOSTS_LISTED) -> list[HostCircuit]:
    """The API's listing of every host's breaker."""
    async with pooled_connection(pool) as conn:
        cursor = conn.cursor(row_factory=class_row(HostCircuit))
        await cursor.execute(QUERIES["list_host_circuits"], {"limit": limit})
        return await cursor.fetchall()
