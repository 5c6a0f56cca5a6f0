"""The bench's PostgreSQL meter: a backend that has exited still counts, the bench's own do not.

Read at the end only, a client that had closed its connections counted
nothing (the peer's 0.001 CPU-s per 1,000 of issue 13).
"""

from __future__ import annotations

import psycopg
from bench.pg_cpu import BENCH_APPLICATION, DatabaseCpu
from psycopg.conninfo import make_conninfo

from taskq_dev.queries import DEV_QUERIES


def burn(dsn: str, *, application: str) -> None:
    with psycopg.connect(dsn, autocommit=True, application_name=application) as conn:
        conn.execute(DEV_QUERIES["test_burn_cpu"]).fetchall()


def test_a_closed_connection_still_counts_and_the_bench_connections_do_not(db_dsn: str) -> None:
    # The admin database of the test database's own server (TASKQ_TEST_DSN's or the
    # embedded one's).
    meter = DatabaseCpu(db_dsn, make_conninfo(db_dsn, dbname="postgres"))
    try:
        burn(db_dsn, application=BENCH_APPLICATION)
        bench_own = meter.seconds()
        burn(db_dsn, application="a-client")  # its backend is gone when this returns
        with_client = meter.seconds()
    finally:
        meter.close()

    assert bench_own < 0.1
    assert with_client - bench_own > 0.3
