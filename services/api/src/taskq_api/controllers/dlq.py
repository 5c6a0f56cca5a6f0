"""The dead-letter queue: browse it, requeue (optionally edited) messages, purge them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from taskq_api.dependencies import DeadLetters, RequestLimits
from taskq_api.responses import error_responses, write_errors
from taskq_core.errors import InvalidFieldError
from taskq_core.models import DlqReprocess, DlqReprocessed
from taskq_core.operation_models import DlqPage, DlqPurge, DlqPurged
from taskq_core.repository.dlq import DlqSelection
from taskq_core.submission import redrive_rewriter

PAGE_LIMIT = 500
"""Largest page of GET /dlq."""

TaskTypeFilter = Annotated[
    str | None, QueryParameter(min_length=1, max_length=200, pattern="^[^\\x00]*$")
]


class DlqController(Controller):
    path = "/dlq"
    tags = ["dlq"]  # noqa: RUF012 - Litestar reads these as class attributes

    @get(
        operation_id="listDlq",
        summary="Dead letters, newest first",
        description=(
            "Each with its last error, HTTP status, attempts, when it failed and the call "
            "it would make (credentials redacted). Pass `next_cursor` back as `cursor`, "
            "with the same filters, for the next page."
        ),
        responses=error_responses(400, 401, 503),
    )
    async def browse(
        self,
        *,
        dead_letters: DeadLetters,
        task_type: TaskTypeFilter = None,
        task_id: FromQuery[UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=1024)] = None,
    ) -> DlqPage:
        selection = DlqSelection(task_type=task_type, task_id=task_id)
        return await dead_letters.page(selection, limit=limit, cursor=cursor)

    @post(
        "/reprocess",
        operation_id="reprocessDlq",
        summary="Requeue failed messages by task_type, task_id and/or message_ids",
        description=(
            "Matching messages go back to their work queue with status pending and attempt 0, "
            "with `overrides` (url, headers merged, data, max_retries) applied to the copies, "
            "checked as a submission is. Safe to call twice or concurrently: no message is "
            "requeued twice."
        ),
        status_code=HTTP_200_OK,
        responses=write_errors(),
    )
    async def reprocess(
        self, data: JSONBody[DlqReprocess], dead_letters: DeadLetters, limits: RequestLimits
    ) -> DlqReprocessed:
        selection = _selection(data.task_type, data.task_id, data.message_ids)
        rewrite = None
        if data.overrides is not None:
            rewrite = redrive_rewriter(
                data.overrides, limits.egress, max_headers_size=limits.max_headers_size
            )
        return await dead_letters.reprocess(selection, rewrite)

    @post(
        "/purge",
        operation_id="purgeDlq",
        summary="Delete dead letters for good by task_type, task_id and/or message_ids",
        description=(
            "A filter is required: an empty body is refused. Returns how many were deleted; "
            "their failed statuses stay until STATUS_RETENTION has passed."
        ),
        status_code=HTTP_200_OK,
        responses=write_errors(),
    )
    async def purge(self, data: JSONBody[DlqPurge], dead_letters: DeadLetters) -> DlqPurged:
        selection = _selection(data.task_type, data.task_id, data.message_ids)
        return DlqPurged(purged_count=await dead_letters.purge(selection))


def _selection(
    task_type: str | None, task_id: UUID | None, message_ids: list[int] | None
) -> DlqSelection:
    if task_type is None and task_id is None and not message_ids:
        raise InvalidFieldError("task_type", "give task_type, task_id or message_ids")
    return DlqSelection(task_type=task_type, task_id=task_id, message_ids=message_ids)
