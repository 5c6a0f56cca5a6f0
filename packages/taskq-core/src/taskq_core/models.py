"""Wire models (one frozen msgspec Struct per operation) and the queued message.

Field names are the reference's, byte for byte: clients written for
pgmq-taskq must work unchanged. Fields beyond the reference are additive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from taskq_core.status import TaskStatus

HttpMethod = Literal["POST", "PATCH", "PUT", "DELETE", "GET"]
# PostgreSQL text cannot hold NUL: refused here (400 naming the field), not by the database.
_NO_NUL = "^[^\\u0000]*$"
# A type is read back at GET /task-types/{task_type}: a `/` (even as %2F) or a bare `.` or
# `..` would not survive the URL path, so such names are refused when a type is created.
_TASK_TYPE = "^(?!\\.\\.?$)[^\\u0000/]*$"
MAX_TASK_TYPE_LENGTH = 200
TaskTypeName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_TASK_TYPE_LENGTH, pattern=_TASK_TYPE)
]
PATTERN_MEANINGS = {
    _NO_NUL: "must not contain NUL characters",
    _TASK_TYPE: "must not contain '/' or NUL characters, nor be '.' or '..'",
}
"""What each pattern above means, for error messages a person can act on."""
TaskTypeFilter = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_NO_NUL)]
"""A type to look for: any name a type may have had, including ones made before the rule above."""
ItemId = Annotated[str, msgspec.Meta(max_length=1000, pattern=_NO_NUL)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
Headers = Annotated[dict[str, str], msgspec.Meta(max_length=100)]
MaxRps = Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
MessageId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]  # PGMQ ids are bigint
MessageIds = Annotated[list[MessageId], msgspec.Meta(max_length=100)]  # bulk: by type or task
# Issue 15, delayed delivery: milliseconds or a Go duration ("90s"); an RFC 3339 time.
Delay = int | Annotated[str, msgspec.Meta(max_length=64)]
NotBefore = Annotated[str, msgspec.Meta(max_length=64, extra_json_schema={"format": "date-time"})]

CallbackUrl = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=8192,
        description=(
            "Called (POST, JSON document about the message) once each message of the batch "
            "has succeeded, through the task type '<task_type>:callbacks', whose max_rps, "
            "retries, timeout and signing secrets are set with POST /task-types. Checked like "
            "url, under the same egress policy. Not called for failures: see "
            "failure_callback_url. Its outcome shows in the message's status as `callback`."
        ),
    ),
]
FailureCallbackUrl = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=8192,
        description=(
            "Called (POST, JSON) once a message of the batch has failed for good (moved to "
            "the DLQ), as callback_url is for successes."
        ),
    ),
]


class ApiOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Per-payload replacement of the batch's url, method or headers (headers are merged)."""

    url: Url | None = None
    method: HttpMethod | None = None
    headers: Headers | None = None


class PayloadSubmit(msgspec.Struct, frozen=True):
    """One call to make: `data` is the JSON body sent to the target."""

    data: Any = None
    api_override: ApiOverride | None = None
    delay: Delay | None = None
    not_before: NotBefore | None = None


class TaskSubmit(msgspec.Struct, frozen=True):
    """Body of POST /tasks: one batch of calls sharing a target and a policy."""

    url: Url
    payloads: list[PayloadSubmit]
    task_type: TaskTypeName = "default"
    item_id: ItemId = ""
    method: HttpMethod = "POST"
    headers: Headers = msgspec.field(default_factory=dict)
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    retry_delay: Annotated[int, msgspec.Meta(ge=0, le=86_400_000)] | None = None
    timeout: Annotated[int, msgspec.Meta(gt=0, le=600_000)] | str | None = None
    max_rps: MaxRps | None = None
    delay: Delay | None = None
    not_before: NotBefore | None = None
    callback_url: CallbackUrl | None = None
    failure_callback_url: FailureCallbackUrl | None = None


class TaskCreated(msgspec.Struct, frozen=True):
    """Reply to POST /tasks: one message id per payload, in payload order."""

    task_id: UUID
    message_ids: list[int]


class ResponseView(msgspec.Struct, frozen=True):
    """The first RESPONSE_CAPTURE_BYTES of the last reply body (base64 when not UTF-8 text)."""

    body: str
    encoding: Literal["utf-8", "base64"]
    content_type: str
    truncated: bool


class CallbackView(msgspec.Struct, frozen=True):
    """Where a message's callback stands: pending (queued or retrying), success or failed.

    Its outcome never changes the message's own status.
    """

    kind: Literal["success", "failure"]  # callback_url (success) or failure_callback_url
    status: Literal["pending", "success", "failed"]
    attempt: int  # failed attempts so far, as the message's own `attempt`
    error: str
    updated_at: datetime
    http_status: int | None = None
    duration_ms: float | None = None


class MessageStatusView(msgspec.Struct, frozen=True):
    """Where one payload stands. Never includes the forwarded headers."""

    message_id: int
    item_id: str
    task_type: str
    payload: Any
    status: TaskStatus
    error: str
    attempt: int
    updated_at: datetime
    payload_id: int
    http_status: int | None = None
    duration_ms: float | None = None
    created_at: datetime | None = None
    dlq_message_id: int | None = None  # its id in the DLQ while it is there (status failed)
    scheduled_for: datetime | None = None
    response: ResponseView | None = None
    # Times the target answered 429 (or 503 with Retry-After): no attempt spent.
    snoozes: int = 0
    # Present once the batch's callback_url / failure_callback_url was enqueued.
    callback: CallbackView | None = None


class TaskStatusView(msgspec.Struct, frozen=True):
    """Reply to GET /tasks/{task_id}, statuses ordered by payload_id."""

    task_id: UUID
    statuses: list[MessageStatusView]


SigningSecret = Annotated[str, msgspec.Meta(min_length=32, max_length=256, pattern=_NO_NUL)]
MaxRetries = Annotated[int, msgspec.Meta(ge=0, le=100)]
DelayMs = Annotated[int, msgspec.Meta(ge=0, le=86_400_000)]
TimeoutMs = Annotated[int, msgspec.Meta(gt=0, le=600_000)]
StatusCode = Annotated[int, msgspec.Meta(ge=100, le=599)]
StatusCodes = Annotated[list[StatusCode], msgspec.Meta(max_length=500)]


class TaskTypeConfigure(msgspec.Struct, frozen=True):
    """Body of POST /task-types: the type's global rate limit and its delivery defaults.

    Each default applies to the type's calls whose batch did not set it (the
    batch wins); omitted, the worker's settings apply. A POST replaces them all.
    `signing_secrets`: the current secret first, then (during a rotation) the
    previous one; [] stops signing; absent leaves the secrets as they are.
    """

    task_type: TaskTypeName
    max_rps: MaxRps | None = None
    max_retries: MaxRetries | None = None
    retry_delay: DelayMs | None = None  # base backoff, ms (as in a batch)
    retry_max_delay: Annotated[int, msgspec.Meta(gt=0, le=86_400_000)] | None = None  # ms
    timeout: TimeoutMs | str | None = None  # ms, or a duration such as "30s" (as in a batch)
    retryable_status_codes: StatusCodes | None = None
    headers: Headers | None = None
    # Calls in flight at once across every replica; null: no limit.
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    signing_secrets: Annotated[list[SigningSecret], msgspec.Meta(max_length=2)] | None = None
    # AIMD between min_rps (default 1/s) and max_rps, which it needs (taskq_core.rate_shaping).
    adaptive: bool = False
    min_rps: MaxRps | None = None


class DeliveryDefaults(msgspec.Struct, frozen=True, omit_defaults=True):
    """A task type's delivery defaults as stored (and read by the worker); None: the setting."""

    max_retries: int | None = None
    retry_delay_ms: int | None = None
    retry_max_delay_ms: int | None = None
    timeout_ms: int | None = None
    retryable_status_codes: list[int] | None = None
    headers: dict[str, str] | None = None


class TaskTypeView(msgspec.Struct, frozen=True, omit_defaults=True):
    """A task type's configuration; max_rps null means unlimited.

    The reference's four fields always; a delivery default only when set (absent:
    the worker's setting applies). Credential header values are shown redacted.
    """

    task_type: str
    max_rps: float | None
    created_at: datetime
    updated_at: datetime
    # Calls carry X-Taskq-Signature; the secrets are never shown.
    signed: bool
    # AIMD rate shaping on (issue 16).
    adaptive: bool
    max_retries: int | None = None
    retry_delay: int | None = None
    retry_max_delay: int | None = None
    timeout: int | None = None
    retryable_status_codes: list[int] | None = None
    headers: dict[str, str] | None = None
    max_concurrency: int | None = None
    # Until when a target's 429 paused the type (null: not paused).
    snoozed_until: datetime | None = None
    min_rps: float | None = None
    # The rate the type is sent at now: max_rps lowered by a target's rate-limit
    # headers (until paced_until) or by the adaptive rate; null when unlimited.
    allowed_rps: float | None = None
    paced_until: datetime | None = None


class DlqOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Changes applied to the requeued copies (edit and redrive), checked like a submission.

    `headers` are merged over the stored ones (as api_override does); `data`
    replaces the body when present (null included).
    """

    url: Url | None = None
    headers: Headers | None = None
    data: Any | msgspec.UnsetType = msgspec.UNSET
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


class DlqReprocess(msgspec.Struct, frozen=True):
    """Body of POST /dlq/reprocess: which failed messages to send again, and what to change."""

    task_type: TaskTypeFilter | None = None
    task_id: UUID | None = None
    # Beyond the reference: DLQ message ids (as GET /dlq lists them) and edits.
    message_ids: MessageIds | None = None
    overrides: DlqOverrides | None = None


class DlqReprocessed(msgspec.Struct, frozen=True):
    """Reply to POST /dlq/reprocess: the new message ids in the work queue."""

    reprocessed_count: int
    message_ids: list[int]


class QueuedCall(msgspec.Struct, frozen=True, omit_defaults=True):
    """The PGMQ message body: everything a worker needs to make one call.

    The batch defaults are resolved at submission so a worker never needs the
    batch again; `None` limits fall back to the worker's settings.
    """

    task_id: str
    payload_id: int
    task_type: str
    url: str
    method: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    data: Any = None
    item_id: str = ""
    timeout_ms: int | None = None
    max_retries: int | None = None
    retry_delay_ms: int | None = None
    callback_url: str | None = None
    failure_callback_url: str | None = None
    # Set on a callback's own message only: the task type of the message it reports
    # on. A callback carries no callback URLs, so it never triggers another.
    callback_of: str | None = None
