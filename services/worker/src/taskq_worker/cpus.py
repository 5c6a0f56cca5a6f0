"""How many CPUs this container may use: its cgroup CPU quota, else the CPUs it may run on.

os.cpu_count() reports the host's CPUs; a pod limited to 2 CPUs on a 64-core
node must not start 64 processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPU quota rounded up (cgroup v2 cpu.max, v1 cfs quota), capped by the CPUs we may use."""
    cpus = _schedulable_cpus()
    quota = _cgroup_v2_quota(cgroup_root) or _cgroup_v1_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(cpus, 1)


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on; empty where the platform cannot tell (not Linux)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def _schedulable_cpus() -> int:
    return len(allowed_cpus()) or os.cpu_count() or 1


def _cgroup_v2_quota(root: Path) -> float | None:
    """`cpu.max` holds "<quota> <period>" or "max <period>" (no limit)."""
    fields = _read(root / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _cgroup_v1_quota(root: Path) -> float | None:
    """cfs_quota_us is -1 without a limit."""
    for controller in ("cpu", "cpu,cpuacct"):
        quota = _read(root / controller / "cpu.cfs_quota_us")
        if quota:
            return _ratio(quota, _read(root / controller / "cpu.cfs_period_us"))
    return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return ""
