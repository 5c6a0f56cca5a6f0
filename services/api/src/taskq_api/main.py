"""Console entry point `taskq-api`: settings, logging, then granian serving create_app."""

from __future__ import annotations

import shutil

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import Server
from loguru import logger

from taskq_api.metrics_directory import prepare_multiprocess_metrics
from taskq_core.errors import DatabaseUnavailableError, SchemaMismatchError
from taskq_core.logs import configure_logging, stdlib_logging_config
from taskq_core.schema_version import check_at_start
from taskq_core.settings import Settings
from taskq_core.startup import load_settings_or_exit

APP_FACTORY = "taskq_api.app:create_app"


def main() -> None:
    """Serve the API on HOST:PORT with API_WORKERS granian worker processes."""
    settings = load_settings_or_exit()
    configure_logging(settings)
    if not settings.api_keys:
        # The reference's behaviour, kept for compatibility; logged once per server.
        logger.warning(
            "API_KEYS is not set: every route is open to anyone who can reach the port "
            "(see SECURITY.md)"
        )
    check_schema_or_exit(settings)
    metrics_dir = prepare_multiprocess_metrics() if settings.api_workers > 1 else None
    server = Server(
        APP_FACTORY,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.api_workers,
        factory=True,
        log_level=granian_log_level(settings),
        log_access=False,
        log_dictconfig=stdlib_logging_config(),  # granian's lines in our format
        # Bounds shutdown: a worker still inside a request (or still starting
        # when SIGTERM arrives) is killed after the grace period, never waited on forever.
        workers_kill_timeout=max(1, round(settings.shutdown_grace_period)),
    )
    logger.info(
        "taskq-api listening on {}:{} with {} worker(s)",
        settings.host,
        settings.port,
        settings.api_workers,
    )
    try:
        server.serve()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def check_schema_or_exit(settings: Settings) -> None:
    """Refuse to serve on a schema this code does not fit (one line, exit status 1)."""
    try:
        check_at_start(settings, name="taskq-api-start")
    except SchemaMismatchError as error:
        logger.error("{}", error)
        raise SystemExit(1) from error
    except DatabaseUnavailableError as error:
        # Serving anyway: /health/ready says 503 until the database is back.
        logger.warning("schema not checked, the database is unavailable: {}", error)


def granian_log_level(settings: Settings) -> LogLevels:
    """granian's own log level for LOG_LEVEL (it has no trace level)."""
    names = {"trace": "debug", "warn": "warning"}
    return LogLevels(names.get(settings.log_level, settings.log_level))
