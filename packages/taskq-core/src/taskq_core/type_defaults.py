"""A task type's delivery defaults: from POST /task-types, to storage, to the status view.

Checked here, before any database work, with the same rules as a batch's own
fields (a header that could not be sent is refused, naming the field), so a
stored default is always one a worker can use.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from taskq_core.errors import InvalidFieldError
from taskq_core.headers import check_headers
from taskq_core.models import DeliveryDefaults, TaskTypeConfigure, TaskTypeView
from taskq_core.redaction import redact_headers
from taskq_core.submission import timeout_to_ms

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(DeliveryDefaults).decode


def defaults_from(body: TaskTypeConfigure) -> DeliveryDefaults:
    """The defaults a POST /task-types sets; InvalidFieldError names a bad field."""
    if body.headers:
        check_headers("headers", body.headers)
    statuses = body.retryable_status_codes
    return DeliveryDefaults(
        max_retries=body.max_retries,
        retry_delay_ms=body.retry_delay,
        retry_max_delay_ms=body.retry_max_delay,
        timeout_ms=timeout_to_ms(body.timeout),
        retryable_status_codes=None if statuses is None else sorted(set(statuses)),
        headers=dict(body.headers) if body.headers is not None else None,
    )


def check_rate_shaping(*, adaptive: bool, max_rps: float | None, min_rps: float | None) -> None:
    """adaptive moves the rate between min_rps and max_rps: both bounds must make sense."""
    if adaptive and max_rps is None:
        raise InvalidFieldError("adaptive", "needs max_rps: the adaptive rate climbs back to it")
    if min_rps is not None:
        if not adaptive:
            raise InvalidFieldError("min_rps", "applies only with adaptive: true")
        if max_rps is not None and min_rps > max_rps:
            raise InvalidFieldError("min_rps", "must not exceed max_rps")


def encode_defaults(defaults: DeliveryDefaults) -> str:
    return _encode(defaults).decode()


def decode_defaults(text: str | None) -> DeliveryDefaults:
    """Stored defaults; anything unreadable counts as none (the settings apply)."""
    if not text:
        return DeliveryDefaults()
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return DeliveryDefaults()


def task_type_view(
    *,
    task_type: str,
    max_rps: float | None,
    created_at: datetime,
    updated_at: datetime,
    defaults: str | None,
    max_concurrency: int | None,
    snoozed_until: datetime | None,
    signed: bool,
    adaptive: bool = False,
    min_rps: float | None = None,
    allowed_rps: float | None = None,
    paced_until: datetime | None = None,
) -> TaskTypeView:
    """The reference's fields, then the defaults (credential header values redacted)."""
    stored = decode_defaults(defaults)
    headers = stored.headers
    return TaskTypeView(
        task_type=task_type,
        max_rps=max_rps,
        created_at=created_at,
        updated_at=updated_at,
        max_retries=stored.max_retries,
        retry_delay=stored.retry_delay_ms,
        retry_max_delay=stored.retry_max_delay_ms,
        timeout=stored.timeout_ms,
        retryable_status_codes=stored.retryable_status_codes,
        headers=None if headers is None else dict(redact_headers(headers)),  # type: ignore[call-overload]
        max_concurrency=max_concurrency,
        snoozed_until=snoozed_until,
        signed=signed,
        adaptive=adaptive,
        min_rps=min_rps,
        allowed_rps=allowed_rps,
        paced_until=paced_until,
    )
