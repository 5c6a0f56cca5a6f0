"""Composition root of the worker (`taskq-worker`): one process, or a parent of WORKER_PROCESSES."""

from __future__ import annotations

import sys

from loguru import logger

from taskq_core.logs import configure_logging
from taskq_core.startup import load_settings_or_exit
from taskq_worker.affinity import place_this_process
from taskq_worker.cpus import available_cpus
from taskq_worker.endpoints import serve_endpoints
from taskq_worker.parent import ProcessSupervisor
from taskq_worker.signals import stop_on_signals
from taskq_worker.supervisor import Supervisor


def main() -> None:
    settings = load_settings_or_exit(holds_a_session="the worker")
    configure_logging(settings)
    processes = settings.worker_processes or available_cpus()
    if processes > 1:
        sys.exit(ProcessSupervisor(settings, processes).run())
    logger.debug("WORKER_PROCESSES is 1: this process does the work itself")
    supervisor = Supervisor(settings)
    place_this_process(settings, supervisor)
    endpoints = serve_endpoints(
        settings.host,
        settings.metrics_port,
        supervisor.metrics.registry,
        not_ready=supervisor.not_ready,
        not_live=supervisor.not_live,
    )
    stop_on_signals(supervisor.stop_event)
    status = supervisor.run()
    endpoints.shutdown()
    sys.exit(status)
