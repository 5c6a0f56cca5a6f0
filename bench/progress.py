"""One line per step on stderr, each with the time elapsed since the run started."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, text: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {text}", file=sys.stderr, flush=True)
