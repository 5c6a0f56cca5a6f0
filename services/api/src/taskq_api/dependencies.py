"""What handlers receive by injection: built once in create_app, never read from globals.

Handler parameters are annotated with these aliases so Litestar injects them by
name explicitly (inferred dependencies are deprecated in Litestar 2.23+).
"""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from taskq_api.metrics import ApiMetrics
from taskq_core.egress import EgressPolicy
from taskq_core.repository.api import ApiRepository
from taskq_core.repository.dlq import DlqRepository
from taskq_core.repository.operations import OperationsRepository


class Limits:
    """Request limits from the settings that handlers enforce themselves.

    A plain class, not a dataclass: Litestar converts injected values with
    msgspec, which would try to rebuild a dataclass field by field and cannot
    (the egress policy holds ipaddress networks). A plain object passes as is.
    """

    __slots__ = (
        "egress",
        "idempotency_ttl",
        "max_headers_size",
        "max_payloads",
        "max_request_storage",
        "max_schedule_ahead",
    )

    def __init__(
        self,
        *,
        max_payloads: int,
        egress: EgressPolicy,
        max_headers_size: int,
        max_request_storage: int,
        idempotency_ttl: float = 86_400.0,
        max_schedule_ahead: float = 30 * 86_400.0,
    ) -> None:
        self.max_payloads = max_payloads
        self.egress = egress
        """Refuses at submission the urls it can decide on without DNS."""
        self.max_headers_size = max_headers_size
        self.max_request_storage = max_request_storage
        self.idempotency_ttl = idempotency_ttl
        """Seconds an Idempotency-Key is remembered (IDEMPOTENCY_TTL)."""
        self.max_schedule_ahead = max_schedule_ahead
        """Seconds ahead a payload may be scheduled (MAX_SCHEDULE_AHEAD)."""


Repository: TypeAlias = NamedDependency[ApiRepository]
"""The `repository` dependency: all database I/O of the API."""
RequestLimits: TypeAlias = NamedDependency[Limits]
"""The `limits` dependency."""
Metrics: TypeAlias = NamedDependency[ApiMetrics]
"""The `metrics` dependency: submission counters."""
Operations: TypeAlias = NamedDependency[OperationsRepository]
"""The `operations` dependency: listings, cancellation, pause and resume."""
DeadLetters: TypeAlias = NamedDependency[DlqRepository]
"""The `dead_letters` dependency: the DLQ browser, reprocess and purge."""
