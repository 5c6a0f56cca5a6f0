"""How long a thread waits before trying the database again: one rule for all of them.

The fetcher, the recorder and the listener all back off the same way while the
database is away: doubling from a tenth of a second to five seconds, and back
to the start once a call succeeds. The delays are the `backoff` library's
exponential series; this class only adds the reset that a long-lived loop needs.
"""

from __future__ import annotations

from collections.abc import Generator

import backoff

FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class Backoff:
    def __init__(self, *, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self._first = first
        self._cap = cap
        self._delays: Generator[float, None, None] = self._series()

    def next(self) -> float:
        """The delay before the next try (longer each time, up to the cap)."""
        return float(next(self._delays))

    def reset(self) -> None:
        """The database answered: the next outage starts from the first delay again."""
        self._delays = self._series()

    def _series(self) -> Generator[float, None, None]:
        delays = backoff.expo(factor=self._first, max_value=self._cap)
        next(delays)  # the library's generators start with a priming yield (its send protocol)
        return delays
