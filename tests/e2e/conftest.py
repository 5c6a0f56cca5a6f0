"""Fixtures of the end-to-end tests: taskq's processes started as a user starts them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from taskq_core.settings import Settings
from taskq_dev.localpg import LocalPostgres
from tests.support.databases import DLQ
from tests.support.processes import BIN, settings_environment, stop
from tests.support.target import wait_until
from tests.support.throwaway_pg import throwaway_cluster


@dataclass(frozen=True)
class ApiProcess:
    address: str  # host:port
    log: Path  # its stdout and stderr (JSON lines)


@pytest.fixture
def api_process(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[ApiProcess]:
    """`taskq-api` with API_WORKERS granian workers (2, or the test's indirect parameter)."""
    workers = int(getattr(request, "param", 2))
    environment = settings_environment(settings, API_WORKERS=workers, LOG_LEVEL="debug")
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "api.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(BIN / "taskq-api")], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    address = f"127.0.0.1:{environment['PORT']}"

    def started() -> bool:
        assert process.poll() is None, log.read_text()
        # Every granian worker must be up: a SIGTERM while one is still starting
        # makes granian wait for its kill timeout.
        if log.read_text().count("Started worker") < workers:
            return False
        try:
            return httpx.get(f"http://{address}/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(started, timeout=30, interval=0.1)
        yield ApiProcess(address, log)
    finally:
        assert stop(process) == 0, log.read_text()


@pytest.fixture
def own_cluster() -> Iterator[LocalPostgres]:
    """A migrated PostgreSQL of this test's own, which it may stop, restart or freeze."""
    with throwaway_cluster() as server:
        yield server


@pytest.fixture
def own_cluster_settings(own_cluster: LocalPostgres) -> Settings:
    return Settings(
        postgres_dsn=own_cluster.dsn,
        dlq_queue_name=DLQ,
        host="127.0.0.1",
        retry_base_delay=0.05,
        retry_max_delay=1.0,
        timeout=2.0,
        log_format="text",
    )
