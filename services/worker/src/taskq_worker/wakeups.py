"""Wake-up calls for the fetcher: a NOTIFY per queue with new work, or a shutdown."""

from __future__ import annotations

import threading


class Wakeups:
    """Collects the queues that have new work until the fetcher takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._queues: set[str] = set()
        self._everything = False

    def wake(self, queue_name: str) -> None:
        with self._lock:
            self._queues.add(queue_name)
        self._event.set()

    def wake_all(self) -> None:
        """After a reconnect notifications may have been missed: look at every queue."""
        with self._lock:
            self._everything = True
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)

    def take(self) -> tuple[set[str], bool]:
        """The queues woken since the last call, and whether every queue should be looked at."""
        with self._lock:
            queues, everything = self._queues, self._everything
            self._queues, self._everything = set(), False
            self._event.clear()
        return queues, everything
