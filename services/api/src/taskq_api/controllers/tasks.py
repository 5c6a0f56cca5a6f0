"""/tasks: submit a batch, list tasks, see where each payload stands, cancel what is queued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import (
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    Parameter,
    QueryParameter,
)
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from loguru import logger

from taskq_api.dependencies import Metrics, Operations, Repository, RequestLimits
from taskq_api.metrics import COUNTS_REJECTIONS
from taskq_api.responses import error_responses, read_errors, write_errors
from taskq_core.errors import InvalidFieldError, NotFoundError
from taskq_core.idempotency import HEADER as IDEMPOTENCY_HEADER
from taskq_core.idempotency import claim_for
from taskq_core.ids import new_task_id
from taskq_core.models import TaskCreated, TaskStatusView, TaskSubmit
from taskq_core.operation_models import CancelResult, TaskPage
from taskq_core.repository.api import Submission
from taskq_core.repository.operations import TaskFilters
from taskq_core.scheduling import scheduled_times
from taskq_core.status import TaskStatus
from taskq_core.submission import build_calls

MAX_MESSAGE_ID = 2**63 - 1  # PGMQ message ids are bigint
PAGE_LIMIT = 500
"""Largest page of GET /tasks (each listed task's statuses are counted)."""

TaskIdPath = FromPath[Annotated[str, Parameter(schema_extra={"format": "uuid"})]]
Timestamp = Annotated[
    str | None,
    QueryParameter(
        max_length=64, format="date-time", description="ISO 8601; UTC when no offset is given"
    ),
]
Text = Annotated[str | None, QueryParameter(min_length=1, max_length=1000, pattern="^[^\\x00]*$")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_HEADER,
        required=False,
        description=(
            "Makes the submission safe to repeat: a repeat within IDEMPOTENCY_TTL returns "
            "the first answer (same task_id and message_ids, header Idempotent-Replayed: "
            "true); the same key with a different body is a 409. Visible ASCII, at most "
            "255 characters."
        ),
    ),
]


_REPLAYED = {"Idempotent-Replayed": "true"}
"""Tells a client (as Stripe does) that this 201 repeats an earlier answer."""


class TasksController(Controller):
    path = "/tasks"
    tags = ["tasks"]  # noqa: RUF012 - Litestar reads these as class attributes

    @post(
        operation_id="submitTask",
        summary="Submit a batch of calls",
        description=(
            "Queues one message per payload, with its status row, in one transaction: "
            "the whole batch is accepted or none of it is. With an Idempotency-Key, "
            "at most once per key."
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
        *,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TaskCreated]:
        claim = None
        if idempotency_key is not None:
            claim = claim_for(idempotency_key, data, ttl_seconds=limits.idempotency_ttl)
        task_id = new_task_id()
        calls = build_calls(
            data,
            task_id,
            max_payloads=limits.max_payloads,
            egress=limits.egress,
            max_headers_size=limits.max_headers_size,
            max_storage=limits.max_request_storage,
            body_size=len(await request.body()),  # already read and kept by Litestar
        )
        scheduled = scheduled_times(
            data, now=datetime.now(UTC), max_ahead=limits.max_schedule_ahead
        )
        created, replayed = await repository.submit_once(
            claim,
            Submission(
                task_id=task_id,
                task_type=data.task_type,
                item_id=data.item_id,
                max_rps=data.max_rps,
                calls=calls,
                scheduled=scheduled,
            ),
        )
        context = {"task_id": str(created.task_id), "task_type": data.task_type}
        if replayed:
            logger.bind(**context).info("repeated Idempotency-Key: the first answer, again")
            metrics.replayed(data.task_type)
            return Response(created, status_code=HTTP_201_CREATED, headers=_REPLAYED)
        metrics.accepted(data.task_type, len(created.message_ids))
        logger.bind(**context).info("queued {} message(s)", len(created.message_ids))
        return Response(created, status_code=HTTP_201_CREATED)

    @get(
        operation_id="listTasks",
        summary="Tasks, newest first, with their messages counted by status",
        description=(
            "`status` keeps tasks with at least one message in that status. Pass "
            "`next_cursor` back as `cursor`, with the same filters, for the next page; "
            "a cursor that was altered, is stale or was made for other filters is a 400."
        ),
        responses=error_responses(400, 401, 503),
    )
    async def list_tasks(
        self,
        *,
        operations: Operations,
        task_type: Annotated[
            str | None, QueryParameter(min_length=1, max_length=200, pattern="^[^\\x00]*$")
        ] = None,
        status: FromQuery[TaskStatus | None] = None,
        item_id: Text = None,
        created_after: Timestamp = None,
        created_before: Timestamp = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=1024)] = None,
    ) -> TaskPage:
        filters = TaskFilters(
            task_type=task_type,
            status=status,
            item_id=item_id,
            created_after=parse_timestamp("created_after", created_after),
            created_before=parse_timestamp("created_before", created_before),
        )
        return await operations.list_tasks(filters, limit=limit, cursor=cursor)

    @get(
        # A str, parsed here: a malformed id is the client's mistake (400), not a missing route.
        "/{task_id:str}",
        operation_id="getTaskStatus",
        summary="Status of every message of a task",
        description=(
            "Statuses ordered by payload_id; 400 for a malformed id, 404 for an unknown one, "
            "saying so when the task is older than STATUS_RETENTION (its finished statuses "
            "were deleted)."
        ),
        responses=read_errors(),
    )
    async def status(
        self,
        task_id: TaskIdPath,
        repository: Repository,
    ) -> TaskStatusView:
        return await repository.task_status(parse_task_id(task_id))

    @delete(
        "/{task_id:str}",
        operation_id="cancelTask",
        summary="Cancel a task's messages that have not been delivered",
        description=(
            "Queued messages (retries included) become `cancelled` and leave their queue: "
            "they are never called. Messages a worker holds finish and keep their real "
            "outcome (listed as in flight). Cancelling twice is a no-op."
        ),
        status_code=HTTP_200_OK,
        responses=read_errors(),
    )
    async def cancel(self, task_id: TaskIdPath, operations: Operations) -> CancelResult:
        result = await operations.cancel(parse_task_id(task_id))
        logger.bind(task_id=task_id).info(
            "cancelled {} message(s), {} in flight", result.cancelled_count, result.in_flight_count
        )
        return result

    @delete(
        "/{task_id:str}/messages/{message_id:int}",
        operation_id="cancelMessage",
        summary="Cancel one message of a task, unless it is being delivered",
        description="As DELETE /tasks/{task_id}, for the message with this message_id.",
        status_code=HTTP_200_OK,
        responses=read_errors(),
    )
    async def cancel_message(
        self, task_id: TaskIdPath, message_id: FromPath[int], operations: Operations
    ) -> CancelResult:
        task = parse_task_id(task_id)
        if not 1 <= message_id <= MAX_MESSAGE_ID:  # no such message can exist
            raise NotFoundError("message", f"{message_id} of task {task}")
        return await operations.cancel(task, message_id)


def parse_task_id(text: str) -> UUID:
    """The task id of a path, or InvalidFieldError naming `task_id`."""
    try:
        return UUID(text)
    except ValueError as error:
        raise InvalidFieldError("task_id", "is not a UUID (as returned by POST /tasks)") from error


def parse_timestamp(field: str, value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time (UTC unless it says otherwise); 400 naming `field`."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidFieldError(
            field, "must be an ISO 8601 date-time, e.g. 2026-11-30T12:00:00Z"
        ) from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
