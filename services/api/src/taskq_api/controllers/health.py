"""Probes: liveness (the process answers) and readiness (the database answers)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from taskq_api.dependencies import Repository


class HealthStatus(msgspec.Struct, frozen=True):
    status: str


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads these as class attributes

    @get("/live", operation_id="healthLive", summary="Liveness probe")
    async def live(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get(
        "/ready",
        operation_id="healthReady",
        summary="Readiness probe",
        description="503 with a JSON error body when the database does not answer within 1 s.",
    )
    async def ready(self, repository: Repository) -> HealthStatus:
        await repository.ping()
        return HealthStatus(status="ok")
