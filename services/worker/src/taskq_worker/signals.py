"""SIGTERM/SIGINT: the first asks for a graceful stop, a second exits at once."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from loguru import logger


def stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            logger.warning("second {} received: exiting now", signal.Signals(signum).name)
            sys.exit(1)
        logger.info("{} received", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
