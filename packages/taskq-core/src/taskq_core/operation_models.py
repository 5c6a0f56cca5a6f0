"""Wire models of the day-2 operations: listings, cancellation, pause, the DLQ browser.

One frozen msgspec Struct per operation, as in `taskq_core.models`; field
names are stable (the CLI and console of issue 17 read them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from taskq_core.models import MaxRps, MessageIds, TaskTypeName, TaskTypeView


class StatusCounts(msgspec.Struct, frozen=True):
    """How many of a task's messages are in each status (rows deleted by retention excluded)."""

    pending: int
    success: int
    failed: int
    cancelled: int


class TaskSummary(msgspec.Struct, frozen=True):
    """One task (one POST /tasks batch) in GET /tasks."""

    task_id: UUID
    task_type: str
    item_id: str
    created_at: datetime
    message_count: int  # payloads submitted; more than the counts' sum once retention ran
    counts: StatusCounts


class TaskPage(msgspec.Struct, frozen=True):
    """Reply to GET /tasks: newest first; `next_cursor` is null on the last page."""

    tasks: list[TaskSummary]
    next_cursor: str | None


class CancelResult(msgspec.Struct, frozen=True):
    """Reply to DELETE /tasks/{task_id}[/messages/{message_id}].

    Cancelled messages were removed from their queue and will never be called.
    In-flight ones were held by a worker: they finish and keep their real outcome.
    """

    task_id: UUID
    cancelled_count: int
    cancelled_message_ids: list[int]
    in_flight_count: int
    in_flight_message_ids: list[int]


class TaskTypeFigures(TaskTypeView, frozen=True, omit_defaults=True, kw_only=True):
    """A task type's configuration and live figures in GET /task-types.

    The configuration fields are those of GET /task-types/{t} (TaskTypeView),
    shown the same way: a delivery default only when set, credential header
    values redacted, snoozed_until while a target's 429 pauses the type.
    """

    paused: bool
    backlog: int  # messages in the queue: visible, in flight and waiting for a retry
    visible: int  # deliverable now
    in_flight: int  # read by a worker and not finished
    retrying: int  # failed at least once and not finished
    oldest_age_seconds: int
    dlq_depth: int
    effective_rps: float  # successful deliveries per second over the last minute
    # Unlike in the single view, always shown (null when unlimited).
    allowed_rps: float | None


class TaskTypeList(msgspec.Struct, frozen=True):
    """Reply to GET /task-types, ordered by name."""

    task_types: list[TaskTypeFigures]


class TaskTypeRate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of PATCH /task-types/{task_type}: the rate limit alone (null: unlimited)."""

    max_rps: MaxRps | None


class TaskTypePause(msgspec.Struct, frozen=True):
    """Reply to POST /task-types/{task_type}/pause and /resume."""

    task_type: str
    paused: bool


class DeadLetterCall(msgspec.Struct, frozen=True):
    """The call a dead letter would make, credentials redacted (headers, URL password)."""

    url: str
    method: str
    headers: dict[str, str]
    data: Any
    timeout_ms: int | None
    max_retries: int | None
    retry_delay_ms: int | None


class DeadLetter(msgspec.Struct, frozen=True):
    """One message in the DLQ; `message_id` is its DLQ id (what reprocess and purge take)."""

    message_id: int
    task_id: str | None
    payload_id: int | None
    task_type: str | None
    item_id: str | None
    error: str | None
    http_status: int | None
    attempts: int | None
    failed_at: datetime
    call: DeadLetterCall | None  # null when the message is not a taskq call


class DlqPage(msgspec.Struct, frozen=True):
    """Reply to GET /dlq: newest first; `next_cursor` is null on the last page."""

    dead_letters: list[DeadLetter]
    next_cursor: str | None


class DlqPurge(msgspec.Struct, frozen=True):
    """Body of POST /dlq/purge: which dead letters to delete for good (a filter is required)."""

    task_type: TaskTypeName | None = None
    task_id: UUID | None = None
    message_ids: MessageIds | None = None


class DlqPurged(msgspec.Struct, frozen=True):
    """Reply to POST /dlq/purge."""

    purged_count: int


class HostCircuit(msgspec.Struct, frozen=True):
    """One target host's circuit breaker in GET /hosts.

    `calls` and `failures` count the current window (BREAKER_WINDOW), or what
    opened it; `opens_until` is set while open (calls wait until then, then
    probes decide); `times_opened` counts since the host was first called.
    """

    host: str  # host:port
    state: str  # closed, open or half_open
    calls: int
    failures: int
    times_opened: int
    opens_until: datetime | None
    last_failure_at: datetime | None
    updated_at: datetime


class HostCircuitList(msgspec.Struct, frozen=True):
    """Reply to GET /hosts: hosts not closed first, then by name."""

    hosts: list[HostCircuit]
