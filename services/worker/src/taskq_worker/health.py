"""Whether the database answered lately, logged once per change rather than per attempt."""

from __future__ import annotations

import threading

from loguru import logger


class DatabaseHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._up = True

    @property
    def up(self) -> bool:
        return self._up

    def mark_down(self, error: BaseException) -> None:
        with self._lock:
            changed, self._up = self._up, False
        if changed:
            logger.warning("database unavailable, retrying with backoff: {}", error)

    def mark_up(self) -> None:
        with self._lock:
            changed, self._up = not self._up, True
        if changed:
            logger.info("database reachable again, resuming")
