"""POST /dlq/reprocess: send failed messages from the DLQ back to their work queues."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from taskq_api.dependencies import Repository
from taskq_api.responses import write_errors
from taskq_core.errors import InvalidFieldError
from taskq_core.models import DlqReprocess, DlqReprocessed


class DlqController(Controller):
    path = "/dlq"
    tags = ["dlq"]  # noqa: RUF012 - Litestar reads these as class attributes

    @post(
        "/reprocess",
        operation_id="reprocessDlq",
        summary="Requeue failed messages by task_type and/or task_id",
        description=(
            "Matching messages go back to their work queue with status pending and attempt 0. "
            "Safe to call twice or concurrently: no message is requeued twice."
        ),
        status_code=HTTP_200_OK,
        responses=write_errors(),
    )
    async def reprocess(
        self, data: JSONBody[DlqReprocess], repository: Repository
    ) -> DlqReprocessed:
        if data.task_type is None and data.task_id is None:
            raise InvalidFieldError("task_type", "give task_type or task_id (or both)")
        return await repository.reprocess_dlq(task_type=data.task_type, task_id=data.task_id)
