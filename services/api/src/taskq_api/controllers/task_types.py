"""/task-types: rate limits (the reference's routes), live figures, pause and resume."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from taskq_api.dependencies import Operations, Repository
from taskq_api.responses import error_responses, read_errors, write_errors
from taskq_core.models import TaskTypeConfigure, TaskTypeView
from taskq_core.operation_models import TaskTypeList, TaskTypePause, TaskTypeRate
from taskq_core.type_defaults import check_rate_shaping, defaults_from


class TaskTypesController(Controller):
    path = "/task-types"
    tags = ["task types"]  # noqa: RUF012 - Litestar reads these as class attributes

    @post(
        operation_id="configureTaskType",
        summary="Create or update a task type's rate limit and delivery defaults",
        description=(
            "max_rps limits the sum of all worker replicas; null removes the limit. "
            "Once set here, a batch's max_rps no longer changes it. max_retries, "
            "retry_delay, retry_max_delay (ms), timeout (ms or a duration), "
            "retryable_status_codes and headers are defaults for the type's calls: a "
            "batch's own fields win; omitted, the worker's settings apply. Each POST "
            "replaces all of them. Credential header values are shown redacted. "
            "max_concurrency caps the type's calls in flight across every replica. "
            "signing_secrets (1 or 2, at least 32 characters each; [] stops signing; "
            "absent: unchanged) make every call carry X-Taskq-Signature; they are "
            "stored encrypted and never returned. adaptive: true (needs max_rps) lowers "
            "the rate on 429/503 and raises it back while calls succeed (AIMD), never "
            "under min_rps (default 1). allowed_rps in the reply is the rate the type is "
            "sent at now: max_rps, or lower while a target's rate-limit headers "
            "(until paced_until) or the adaptive rate hold it down."
        ),
        status_code=HTTP_200_OK,
        responses=write_errors(409),
    )
    async def configure(
        self, data: JSONBody[TaskTypeConfigure], repository: Repository
    ) -> TaskTypeView:
        defaults = defaults_from(data)
        check_rate_shaping(adaptive=data.adaptive, max_rps=data.max_rps, min_rps=data.min_rps)
        return await repository.configure_task_type(
            data.task_type,
            data.max_rps,
            defaults,
            data.max_concurrency,
            data.signing_secrets,
            adaptive=data.adaptive,
            min_rps=data.min_rps,
        )

    @get(
        operation_id="listTaskTypes",
        summary="Every task type with its configuration and live figures",
        description=(
            "backlog, visible now, in flight, retrying, oldest message age, DLQ depth and "
            "the effective rate (successes per second over the last minute); allowed_rps, "
            "the rate the type is sent at now (max_rps lowered by pacing or adaptive)."
        ),
        responses=error_responses(401, 503),
    )
    async def list_types(self, operations: Operations) -> TaskTypeList:
        return TaskTypeList(task_types=await operations.task_types())

    @get(
        "/{task_type:str}",
        operation_id="getTaskType",
        summary="A task type's configuration",
        description="404 when the type was never submitted nor configured.",
        responses=read_errors(),
    )
    async def read(self, task_type: FromPath[str], repository: Repository) -> TaskTypeView:
        return await repository.get_task_type(task_type)

    @patch(
        "/{task_type:str}",
        operation_id="setTaskTypeRate",
        summary="Change a task type's rate limit and nothing else",
        description=(
            "max_rps (null: unlimited) for the sum of all worker replicas; delivery "
            "defaults, max_concurrency, signing secrets and the adaptive setting stay as "
            "they are (POST /task-types replaces all of them). An adaptive type needs a "
            "max_rps. 404 when the type was never submitted nor configured."
        ),
        responses=write_errors(404),
    )
    async def set_rate(
        self, task_type: FromPath[str], data: JSONBody[TaskTypeRate], repository: Repository
    ) -> TaskTypeView:
        return await repository.set_max_rps(task_type, data.max_rps)

    @post(
        "/{task_type:str}/pause",
        operation_id="pauseTaskType",
        summary="Pause a task type on every worker replica",
        description=(
            "Its messages (retries included) stay queued and are not read; calls already "
            "under way finish. Every replica stops reading it within a second. Send "
            "Content-Type: application/json (the body may be empty), as for every POST."
        ),
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 404, 415, 503),
    )
    async def pause(self, task_type: FromPath[str], operations: Operations) -> TaskTypePause:
        return await operations.set_paused(task_type, paused=True)

    @post(
        "/{task_type:str}/resume",
        operation_id="resumeTaskType",
        summary="Resume a paused task type",
        description="Its messages are delivered again where they were, within a second.",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 404, 415, 503),
    )
    async def resume(self, task_type: FromPath[str], operations: Operations) -> TaskTypePause:
        return await operations.set_paused(task_type, paused=False)
