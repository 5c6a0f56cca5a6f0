"""Where the API's worker processes share their metrics: PROMETHEUS_MULTIPROC_DIR.

Kept apart from `taskq_api.metrics` because `main` must set the variable before
anything imports prometheus_client, which reads it once at import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_directory() -> Path | None:
    """The shared directory, when this process runs among several API workers."""
    configured = os.environ.get(MULTIPROC_VARIABLE)
    return Path(configured) if configured else None


def prepare_multiprocess_metrics() -> Path | None:
    """Give the worker processes one shared, empty metrics directory.

    Must run before any worker imports prometheus_client, which reads the
    variable once. A directory the user configured is emptied (stale files
    from a previous run would add old counts) and kept; otherwise a fresh
    temporary one is made, and returned so it is removed at exit.
    """
    configured = multiprocess_directory()
    if configured is not None:
        configured.mkdir(parents=True, exist_ok=True)
        for stale in configured.glob("*.db"):
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="taskq-api-metrics-"))
    os.environ[MULTIPROC_VARIABLE] = str(created)
    return created
