"""RSS of a process and its children, sampled over a run."""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024


def tree_rss(pid: int) -> int:
    """Bytes resident in `pid` and all its descendants (granian forks its workers)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class RssSeries:
    """(seconds since start, bytes) samples of one process tree."""

    name: str
    samples: list[tuple[float, int]] = field(default_factory=list)

    def add(self, at: float, rss: int) -> None:
        if rss:
            self.samples.append((at, rss))

    def growth_mib(self, warmup: float) -> float:
        """Last sample minus the first one after `warmup` seconds (0 with too few samples)."""
        settled = [rss for at, rss in self.samples if at >= warmup]
        if len(settled) < 2:
            return 0.0
        return (settled[-1] - settled[0]) / MIB

    def peak_mib(self) -> float:
        return max((rss for _, rss in self.samples), default=0) / MIB
