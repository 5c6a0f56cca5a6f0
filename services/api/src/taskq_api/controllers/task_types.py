"""POST /task-types (set a type's global rate limit) and GET /task-types/{task_type}."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from taskq_api.dependencies import Repository
from taskq_api.responses import read_errors, write_errors
from taskq_core.models import TaskTypeConfigure, TaskTypeView


class TaskTypesController(Controller):
    path = "/task-types"
    tags = ["task types"]  # noqa: RUF012 - Litestar reads these as class attributes

    @post(
        operation_id="configureTaskType",
        summary="Create or update a task type's rate limit",
        description=(
            "max_rps limits the sum of all worker replicas; null removes the limit. "
            "Once set here, a batch's max_rps no longer changes it."
        ),
        status_code=HTTP_200_OK,
        responses=write_errors(409),
    )
    async def configure(
        self, data: JSONBody[TaskTypeConfigure], repository: Repository
    ) -> TaskTypeView:
        return await repository.configure_task_type(data.task_type, data.max_rps)

    @get(
        "/{task_type:str}",
        operation_id="getTaskType",
        summary="A task type's configuration",
        description="404 when the type was never submitted nor configured.",
        responses=read_errors(),
    )
    async def read(self, task_type: FromPath[str], repository: Repository) -> TaskTypeView:
        return await repository.get_task_type(task_type)
