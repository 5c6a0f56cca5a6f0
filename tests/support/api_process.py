"""`taskq-api` as a real granian process on 127.0.0.1, for tests that need real sockets."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from taskq_core.settings import Settings
from tests.support.processes import BIN, settings_environment, stop
from tests.support.target import wait_until


def answers(base_url: str, path: str = "/health/live") -> bool:
    try:
        return httpx.get(base_url + path, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_api(
    settings: Settings, log: Path, *, workers: int = 1, **overrides: object
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(base url, process) of a started API whose every worker answers; stopped on exit."""
    environment = settings_environment(settings, API_WORKERS=workers, **overrides)
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(BIN / "taskq-api")], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{environment['PORT']}"
    try:
        # Every granian worker must have started: a SIGTERM that arrives while one
        # is still starting makes granian wait for its kill timeout.
        wait_until(
            lambda: (
                process.poll() is not None
                or (log.read_text().count("Started worker") == workers and answers(base_url))
            ),
            timeout=30,
        )
        assert process.poll() is None, log.read_text()
        yield base_url, process
    finally:
        assert stop(process) == 0, log.read_text()
