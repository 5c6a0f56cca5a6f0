"""POST /tasks (submit a batch) and GET /tasks/{task_id} (where each payload stands)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED
from loguru import logger

from taskq_api.dependencies import Metrics, Repository, RequestLimits
from taskq_api.metrics import COUNTS_REJECTIONS
from taskq_api.responses import read_errors, write_errors
from taskq_core.errors import InvalidFieldError
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
        responses=write_errors(409),
        opt={COUNTS_REJECTIONS: True},
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TaskSubmit],
        repository: Repository,
        limits: RequestLimits,
        metrics: Metrics,
    ) -> TaskCreated:
        task_id = uuid4()
        calls = build_calls(
            data,
            task_id,
            max_payloads=limits.max_payloads,
            egress=limits.egress,
            max_headers_size=limits.max_headers_size,
            max_storage=limits.max_request_storage,
            body_size=len(await request.body()),  # already read and kept by Litestar
        )
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
        # A str, parsed here: a malformed id is the client's mistake (400), not a missing route.
        "/{task_id:str}",
        operation_id="getTaskStatus",
        summary="Status of every message of a task",
        description=(
            "Statuses ordered by payload_id; 400 for a malformed id, 404 for an unknown one."
        ),
        responses=read_errors(),
    )
    async def status(
        self,
        task_id: FromPath[Annotated[str, Parameter(schema_extra={"format": "uuid"})]],
        repository: Repository,
    ) -> TaskStatusView:
        return await repository.task_status(parse_task_id(task_id))


def parse_task_id(text: str) -> UUID:
    """The task id of a path, or InvalidFieldError naming `task_id`."""
    try:
        return UUID(text)
    except ValueError as error:
        raise InvalidFieldError("task_id", "is not a UUID (as returned by POST /tasks)") from error
