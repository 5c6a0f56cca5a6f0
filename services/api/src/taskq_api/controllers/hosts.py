"""/hosts: the per-host circuit breakers the workers share (read-only)."""

from __future__ import annotations

from litestar import Controller, get

from taskq_api.dependencies import Operations
from taskq_api.responses import error_responses
from taskq_core.operation_models import HostCircuitList


class HostsController(Controller):
    path = "/hosts"
    tags = ["hosts"]  # noqa: RUF012 - Litestar reads these as class attributes

    @get(
        operation_id="listHosts",
        summary="Every target host's circuit breaker",
        description=(
            "One row per host:port the workers have called: closed (calls flow), open "
            "(calls wait until opens_until, no attempt spent) or half_open (a few probe "
            "calls decide whether it closes). calls and failures count the current window "
            "(BREAKER_WINDOW). Hosts not closed come first; at most 1,000."
        ),
        responses=error_responses(401, 503),
    )
    async def list_hosts(self, operations: Operations) -> HostCircuitList:
        return HostCircuitList(hosts=await operations.hosts())
