"""Probes: liveness (the process answers) and readiness (the database answers)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from taskq_api.dependencies import Repository
from taskq_api.responses import error_responses


class HealthStatus(msgspec.Struct, frozen=True):
    status: str


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads these as class attributes
    # Probes never need an API key (taskq_api.auth lets these two paths through).
    security = [{}]  # noqa: RUF012

    @get("/live", operation_id="healthLive", summary="Liveness probe")
    async def live(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get(
        "/ready",
        operation_id="healthReady",
        summary="Readiness probe",
        description="503 with a JSON error body when the database does not answer within 1 s.",
        responses=error_responses(503),
    )
    async def ready(self, repository: Repository) -> HealthStatus:
        await repository.ping()
        return HealthStatus(status="ok")
