"""Composition root of the worker process (`taskq-worker`)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from loguru import logger

from taskq_core.logs import configure_logging
from taskq_core.settings import load_settings_or_exit
from taskq_worker.endpoints import serve_endpoints
from taskq_worker.supervisor import Supervisor


def main() -> None:
    settings = load_settings_or_exit()
    configure_logging(settings)
    supervisor = Supervisor(settings)
    endpoints = serve_endpoints(
        settings.host,
        settings.metrics_port,
        supervisor.metrics.registry,
        not_ready=supervisor.not_ready,
        not_live=supervisor.not_live,
    )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if supervisor.stop_event.is_set():
            logger.warning("second {} received: exiting now", signal.Signals(signum).name)
            sys.exit(1)
        logger.info("{} received", signal.Signals(signum).name)
        supervisor.stop_event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    status = supervisor.run()
    endpoints.shutdown()
    sys.exit(status)
