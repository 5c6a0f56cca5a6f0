"""Wake-up calls for the fetcher: new work (NOTIFY per queue), retries coming due, a shutdown."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Woken:
    """What happened since the fetcher last looked."""

    queues: set[str] = field(default_factory=set)  # have new work
    everything: bool = False  # notifications may have been missed: look at every queue
    due: dict[str, float] = field(default_factory=dict)  # queue -> when a retry becomes visible

    def __bool__(self) -> bool:
        return bool(self.queues or self.everything or self.due)


class Wakeups:
    """Collects the queues that have new work until the fetcher takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._queues: set[str] = set()
        self._everything = False
        self._due: dict[str, float] = {}

    def wake(self, queue_name: str) -> None:
        with self._lock:
            self._queues.add(queue_name)
        self._event.set()

    def wake_all(self) -> None:
        """After a reconnect notifications may have been missed: look at every queue."""
        with self._lock:
            self._everything = True
        self._event.set()

    def due(self, queue_name: str, at: float) -> None:
        """A message of `queue_name` becomes visible again at `at` (time.monotonic): a retry."""
        with self._lock:
            self._due[queue_name] = min(at, self._due.get(queue_name, at))
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)

    def take(self) -> Woken:
        """Everything noted since the last call."""
        with self._lock:
            woken = Woken(self._queues, self._everything, self._due)
            self._queues, self._everything, self._due = set(), False, {}
            self._event.clear()
        return woken
