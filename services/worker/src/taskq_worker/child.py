"""One worker process of a replica with WORKER_PROCESSES > 1, started by taskq_worker.parent.

It is a whole worker (fetcher, listener, executors, recorder) except for what
the parent does once for all: the metrics and health port and the queue-state
export. Its metrics go to the multiprocess files the parent serves.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

from loguru import logger

from taskq_core.logs import configure_logging
from taskq_core.startup import load_settings_or_exit
from taskq_worker.affinity import place_this_process
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.signals import stop_on_signals
from taskq_worker.supervisor import Supervisor

PARENT_VARIABLE = "TASKQ_WORKER_PARENT_PID"  # set by taskq_worker.parent
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PUBLISH_SECONDS = 1.0  # how stale the gauges the parent serves may be
# The exit status of a child that found the schema unfit: the parent stops the
# replica instead of restarting children that would only fail the same way.
SCHEMA_UNFIT_STATUS = 3


def main() -> None:
    parent = int(os.environ.get(PARENT_VARIABLE, os.getppid()))
    die_with_parent()
    if os.getppid() != parent:  # it died while this process was starting
        sys.exit(1)
    settings = load_settings_or_exit(holds_a_session="the worker")
    configure_logging(settings)
    metrics = WorkerMetrics(multiprocess=True)
    supervisor = Supervisor(settings, metrics, export_queue_state=False)
    place_this_process(settings, supervisor)
    stop_on_signals(supervisor.stop_event)
    watcher = ParentWatcher(parent, metrics, supervisor.stop_event)
    threading.Thread(target=watcher.run, name="parent-watcher", daemon=True).start()
    status = supervisor.run()
    sys.exit(SCHEMA_UNFIT_STATUS if supervisor.supervision.schema_unfit.is_set() else status)


def die_with_parent() -> None:
    """On Linux the kernel kills this process when its parent dies, as a container's die together.

    A replica killed outright (SIGKILL, OOM) then loses its children at once
    rather than leaving them running unsupervised; elsewhere ParentWatcher
    notices within a second and stops this process.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        logger.warning("could not ask to die with the parent (errno {})", ctypes.get_errno())


class ParentWatcher:
    """Publishes the gauges every second, and stops this child if its parent is gone.

    A parent killed outright (SIGKILL, OOM) cannot pass SIGTERM on; the child
    then drains and exits by itself rather than run unsupervised.
    """

    def __init__(self, parent: int, metrics: WorkerMetrics, stop: threading.Event) -> None:
        self._parent = parent
        self._metrics = metrics
        self._stop = stop

    def run(self) -> None:
        # Published at once, then each second: until the first publish the
        # parent reads this child's gauges as 0 (not live, not ready).
        while True:
            try:
                self._metrics.publish()
            except Exception:  # a metrics write must not end the watch over the parent
                logger.exception("could not publish the worker gauges")
            if os.getppid() != self._parent:
                logger.warning("the replica's main process is gone: stopping this worker process")
                self._stop.set()
            if self._stop.wait(PUBLISH_SECONDS):
                return


if __name__ == "__main__":
    main()
