"""What handlers receive by injection: built once in create_app, never read from globals.

Handler parameters are annotated with these aliases so Litestar injects them by
name explicitly (inferred dependencies are deprecated in Litestar 2.23+).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from litestar.di import NamedDependency

from taskq_api.metrics import ApiMetrics
from taskq_core.repository.api import ApiRepository


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits from the settings that handlers enforce themselves."""

    max_payloads: int


Repository: TypeAlias = NamedDependency[ApiRepository]
"""The `repository` dependency: all database I/O of the API."""
RequestLimits: TypeAlias = NamedDependency[Limits]
"""The `limits` dependency."""
Metrics: TypeAlias = NamedDependency[ApiMetrics]
"""The `metrics` dependency: submission counters."""
