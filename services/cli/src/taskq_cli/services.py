"""`taskq migrate|api|worker|dev`: start taskq's services, as their console scripts do.

The process is replaced (exec) by the service, so signals, exit status and logs
are the service's own: `taskq worker` under a supervisor behaves exactly like
`taskq-worker`. Settings come from the environment (README, Configuration).
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

import click

DEV_MODULES = ("taskq_dev.devrun", "taskq_core.devrun")
"""Where `make run`'s launcher lives: the dev-only member, or core in older checkouts."""


def script(name: str) -> str:
    """The console script installed next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise click.ClickException(
            f"{name} is not installed in this environment: install taskq's services "
            "(`make install` in the repository) to start them from the CLI"
        )
    return found


def dev_module() -> str:
    """The importable launcher module; found by name so the CLI imports no taskq code."""
    for name in DEV_MODULES:
        try:
            if find_spec(name) is not None:
                return name
        except ModuleNotFoundError:
            continue
    raise click.ClickException(
        "taskq dev needs the development tools: run `make install` in the repository"
    )


def replace_process(argv: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - argv is a fixed console script, no shell


@click.command(epilog="Example:\n\n  POSTGRES_DSN=postgresql://… taskq migrate")
def migrate() -> None:
    """Install PGMQ and taskq's schema into POSTGRES_DSN (safe to run twice, or at once)."""
    replace_process([script("taskq-migrate")])


@click.command(epilog="Example:\n\n  POSTGRES_DSN=postgresql://… PORT=8080 taskq api")
def api() -> None:
    """Start the API (granian, API_WORKERS processes) against POSTGRES_DSN."""
    replace_process([script("taskq-api")])


@click.command(epilog="Example:\n\n  POSTGRES_DSN=postgresql://… MAX_WORKERS=50 taskq worker")
def worker() -> None:
    """Start one worker replica against POSTGRES_DSN (run more for more throughput)."""
    replace_process([script("taskq-worker")])


@click.command(
    epilog="Example:\n\n  taskq dev            # then: taskq submit records.ndjson --url …"
)
def dev() -> None:
    """What `make run` does: a local PostgreSQL if POSTGRES_DSN is unset, migrate, API + worker."""
    replace_process([sys.executable, "-m", dev_module()])
