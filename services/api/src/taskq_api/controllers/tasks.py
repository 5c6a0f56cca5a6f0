"""POST /tasks (submit a batch) and GET /tasks/{task_id} (where each payload stands)."""

from __future__ import annotations

from uuid import UUID, uuid4

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED
from loguru import logger

from taskq_api.dependencies import Metrics, Repository, RequestLimits
from taskq_api.responses import read_errors, write_errors
from taskq_core.models import TaskCreated, TaskStatusView, TaskSubmit
from taskq_core.submission import build_calls


class TasksController(Controller):
    path = "/tasks"
    tags = ["tasks"]  # noqa: RUF012 - Litestar reads these as class attributes

    @post(
        operation_id="submitTask",
        summary="Submit a batch of calls",
        description=(
            "Queues one message per payload, with its status row, in one transaction: "
            "the whole batch is accepted or none of it is."
        ),
        status_code=HTTP_201_CREATED,
        responses=write_errors(),
    )
    async def submit(
        self,
        data: JSONBody[TaskSubmit],
        repository: Repository,
        limits: RequestLimits,
        metrics: Metrics,
    ) -> TaskCreated:
        task_id = uuid4()
        calls = build_calls(data, task_id, max_payloads=limits.max_payloads, egress=limits.egress)
        message_ids = await repository.submit(
            task_id=task_id,
            task_type=data.task_type,
            item_id=data.item_id,
            max_rps=data.max_rps,
            calls=calls,
        )
        metrics.accepted(data.task_type, len(message_ids))
        logger.bind(task_id=str(task_id), task_type=data.task_type).info(
            "queued {} message(s)", len(message_ids)
        )
        return TaskCreated(task_id=task_id, message_ids=message_ids)

    @get(
        "/{task_id:uuid}",
        operation_id="getTaskStatus",
        summary="Status of every message of a task",
        description="Statuses ordered by payload_id; 404 for an unknown task id.",
        responses=read_errors(),
    )
    async def status(self, task_id: FromPath[UUID], repository: Repository) -> TaskStatusView:
        return await repository.task_status(task_id)
