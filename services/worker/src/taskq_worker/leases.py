"""The concurrency slots this replica holds, kept alive while their calls run.

A slot of a task type with max_concurrency is a lease row in PostgreSQL with
an expiry (taskq.take_slots). The fetcher renews the leases of this replica's
calls about every second; a replica that crashed stops renewing, and its slots
come back within LEASE_SECONDS instead of leaking as a counter would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

LEASE_SECONDS = 5.0  # how soon a crashed replica's slots are taken again
RENEW_EVERY = 1.0  # well inside LEASE_SECONDS, so a slow round trip loses no lease


class LeaseBook:
    """Lease ids held by this replica, each until the monotonic time its call must end by."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[int, float] = {}

    def hold(self, lease_id: int, until: float) -> None:
        with self._lock:
            self._held[lease_id] = until

    def drop(self, lease_id: int | None) -> None:
        """The call ended (or never started): stop renewing its lease."""
        if lease_id is None:
            return
        with self._lock:
            self._held.pop(lease_id, None)

    def to_renew(self) -> list[int]:
        """Leases still in use; one held past its call's deadline is let go (it would leak)."""
        now = self._clock()
        with self._lock:
            for lease_id in [lease for lease, until in self._held.items() if until < now]:
                del self._held[lease_id]
            return list(self._held)
