"""How long a thread waits before trying the database again: one rule for all of them.

The fetcher, the recorder and the listener all back off the same way while the
database is away: doubling from a tenth of a second to five seconds, and back
to the start once a call succeeds.
"""

from __future__ import annotations

FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class Backoff:
    def __init__(self, *, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self._first = first
        self._cap = cap
        self._delay = 0.0

    def next(self) -> float:
        """The delay before the next try (longer each time, up to the cap)."""
        self._delay = min(max(self._delay * 2, self._first), self._cap)
        return self._delay

    def reset(self) -> None:
        """The database answered: the next outage starts from the first delay again."""
        self._delay = 0.0
