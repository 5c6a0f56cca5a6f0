"""Start taskq's console scripts as real processes, the way `make run` and a container do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from taskq_core.settings import Settings

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_environment(settings: Settings, **overrides: object) -> dict[str, str]:
    """The environment a process needs to run with `settings` (plus overrides by variable name)."""
    env = dict(os.environ)
    env.update(
        POSTGRES_DSN=settings.postgres_dsn,
        DLQ_QUEUE_NAME=settings.dlq_queue_name,
        HOST="127.0.0.1",
        RETRY_BASE_DELAY=f"{settings.retry_base_delay}s",
        RETRY_MAX_DELAY=f"{settings.retry_max_delay}s",
        TIMEOUT=f"{settings.timeout}s",
        LOG_FORMAT="json",
        LOG_LEVEL="info",
        METRICS_PORT=str(free_port()),
        PORT=str(free_port()),
        # Not `auto`: the same processes on every machine, and the parent exercised.
        WORKER_PROCESSES="2",
    )
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def start_worker(settings: Settings, log: Path, **overrides: object) -> subprocess.Popen[bytes]:
    """A `taskq-worker` process; its log goes to `log` (read it when a test fails)."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [str(BIN / "taskq-worker")],
            env=settings_environment(settings, **overrides),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes], *, timeout: float = 30.0) -> int:
    """SIGTERM, then wait; kill if it overstays. Returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
