"""Turns one POST /tasks body into the messages a worker needs: pure, no I/O.

Everything a worker needs is resolved here (api_override applied, timeout in
milliseconds) so a message is self-contained, and every check that msgspec's
type validation cannot express happens here, before any database work, so a
bad batch is rejected whole and the error names the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit
from uuid import UUID

import msgspec

from taskq_core.callbacks import CALLBACK_TYPE_SUFFIX, callback_type_for
from taskq_core.durations import parse_duration
from taskq_core.egress import EgressPolicy
from taskq_core.errors import InvalidFieldError, RequestTooLargeError
from taskq_core.headers import DEFAULT_MAX_HEADERS_SIZE, check_headers
from taskq_core.models import (
    MAX_TASK_TYPE_LENGTH,
    DlqOverrides,
    PayloadSubmit,
    QueuedCall,
    TaskSubmit,
)

MAX_TIMEOUT_MS = 600_000
"""Ten minutes: a call that needs longer does not fit a visibility-timeout-based queue."""
DEFAULT_MAX_REQUEST_STORAGE = 64 * 1024**2
"""Bytes one POST /tasks may store (MAX_REQUEST_STORAGE's default); see estimate_storage."""
_encode = msgspec.json.Encoder().encode


def build_calls(
    submit: TaskSubmit,
    task_id: UUID,
    *,
    max_payloads: int,
    egress: EgressPolicy | None = None,
    max_headers_size: int = DEFAULT_MAX_HEADERS_SIZE,
    max_storage: int = DEFAULT_MAX_REQUEST_STORAGE,
    body_size: int = 0,
) -> list[QueuedCall]:
    """One QueuedCall per payload, in payload order; raise InvalidFieldError on a bad field.

    With an active `egress` policy, a url it can refuse without DNS is refused
    here (400 naming the field) rather than left to fail in the worker. A batch
    that would store more than `max_storage` bytes is refused before any is built.
    """
    policy = egress or EgressPolicy()
    count = len(submit.payloads)
    if count == 0:
        raise InvalidFieldError("payloads", "must contain at least one payload")
    if count > max_payloads:
        raise InvalidFieldError(
            "payloads", f"has {count} payloads; at most {max_payloads} are accepted per request"
        )
    check_url("url", submit.url, policy)
    _check_callbacks(submit, policy)
    check_headers("headers", submit.headers, max_size=max_headers_size)
    timeout_ms = timeout_to_ms(submit.timeout)
    task = str(task_id)
    calls = [
        _call(
            submit,
            payload,
            index,
            task_id=task,
            timeout_ms=timeout_ms,
            policy=policy,
            max_headers_size=max_headers_size,
        )
        for index, payload in enumerate(submit.payloads)
    ]
    stored = estimate_storage(calls, body_size)
    if stored > max_storage:
        raise RequestTooLargeError(
            "headers" if submit.headers else "payloads",
            f"this batch would store about {stored // 1024} KiB (its url and headers are "
            f"copied into each of its {count} messages), more than MAX_REQUEST_STORAGE "
            f"({max_storage // 1024} KiB); send fewer payloads per request or shorter headers",
        )
    return calls


def estimate_storage(calls: list[QueuedCall], body_size: int) -> int:
    """Bytes the calls take in the database: each message's own fields, plus the data twice.

    The data is stored in the message and in its status row; the body bounds
    its size. The rest (url, headers, ids) is measured once per distinct set of
    shared fields, so the estimate costs little even for 10,000 payloads.
    """
    sizes: dict[tuple[int, str], int] = {}
    total = 2 * body_size
    for call in calls:
        key = (id(call.headers), call.url)
        if key not in sizes:
            sizes[key] = len(_encode(msgspec.structs.replace(call, data=None)))
        total += sizes[key]
    return total


def _call(
    submit: TaskSubmit,
    payload: PayloadSubmit,
    index: int,
    *,
    task_id: str,
    timeout_ms: int | None,
    policy: EgressPolicy,
    max_headers_size: int,
) -> QueuedCall:
    url, method, headers = submit.url, submit.method, submit.headers
    override = payload.api_override
    if override is not None:
        where = f"payloads[{index}].api_override"
        if override.url is not None:
            check_url(f"{where}.url", override.url, policy)
            url = override.url
        if override.method is not None:
            method = override.method
        if override.headers:
            check_headers(f"{where}.headers", override.headers, max_size=max_headers_size)
            headers = merge_headers(headers, override.headers)
    return QueuedCall(
        task_id=task_id,
        payload_id=index,
        task_type=submit.task_type,
        url=url,
        method=method,
        # Shared, not copied, by every call without its own headers (never mutated).
        headers=headers,
        data=payload.data,
        item_id=submit.item_id,
        timeout_ms=timeout_ms,
        max_retries=submit.max_retries,
        retry_delay_ms=submit.retry_delay,
        callback_url=submit.callback_url,
        failure_callback_url=submit.failure_callback_url,
    )


def _check_callbacks(submit: TaskSubmit, policy: EgressPolicy) -> None:
    """Callback URLs are targets too; their task type must be a name POST /task-types takes."""
    for field, callback in (
        ("callback_url", submit.callback_url),
        ("failure_callback_url", submit.failure_callback_url),
    ):
        if callback is None:
            continue
        check_url(field, callback, policy)
        if len(callback_type_for(submit.task_type)) > MAX_TASK_TYPE_LENGTH:
            raise InvalidFieldError(
                field,
                f"needs the task type {submit.task_type[:20]!r}... to leave room for "
                f"{CALLBACK_TYPE_SUFFIX!r} within {MAX_TASK_TYPE_LENGTH} characters "
                "(its callbacks' own task type)",
            )


def check_url(field: str, url: str, policy: EgressPolicy | None = None) -> None:
    """The target must be an absolute http(s) URL with a host that `policy` does not refuse."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError as error:
        raise InvalidFieldError(field, f"is not a valid URL: {error}") from error
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidFieldError(field, f"must be an http or https URL, got {url!r}")
    if not host:
        raise InvalidFieldError(field, f"must name a host, got {url!r}")
    if any(character.isspace() or not character.isprintable() for character in url):
        raise InvalidFieldError(field, "must not contain whitespace or control characters")
    if policy is not None and (reason := policy.refuse_host(host)):
        raise InvalidFieldError(field, f"is refused by the egress policy: {reason}")


def merge_headers(base: Mapping[str, str], override: Mapping[str, str]) -> dict[str, str]:
    """`base` with `override` on top; names compare case-insensitively, as HTTP's do."""
    replaced = {name.lower() for name in override}
    merged = {name: value for name, value in base.items() if name.lower() not in replaced}
    merged.update(override)
    return merged


def timeout_to_ms(timeout: int | str | None) -> int | None:
    """A batch timeout as whole milliseconds: an int is milliseconds, a string a Go duration."""
    if timeout is None:
        return None
    if isinstance(timeout, str):
        try:
            seconds = parse_duration(timeout)
        except ValueError as error:
            raise InvalidFieldError("timeout", str(error)) from error
        milliseconds = round(seconds * 1000)
    else:
        milliseconds = timeout
    if not 0 < milliseconds <= MAX_TIMEOUT_MS:
        raise InvalidFieldError(
            "timeout", f"must be more than 0 and at most {MAX_TIMEOUT_MS} ms (10m)"
        )
    return milliseconds


def redrive_rewriter(
    overrides: DlqOverrides,
    policy: EgressPolicy | None = None,
    *,
    max_headers_size: int = DEFAULT_MAX_HEADERS_SIZE,
) -> Callable[[QueuedCall], QueuedCall]:
    """What POST /dlq/reprocess applies to each requeued call, checked here like a submission."""
    if overrides.url is not None:
        check_url("overrides.url", overrides.url, policy or EgressPolicy())
    if overrides.headers:
        check_headers("overrides.headers", overrides.headers, max_size=max_headers_size)

    def rewrite(call: QueuedCall) -> QueuedCall:
        changes: dict[str, object] = {}
        if overrides.url is not None:
            changes["url"] = overrides.url
        if overrides.headers:
            changes["headers"] = merge_headers(call.headers, overrides.headers)
        if overrides.data is not msgspec.UNSET:
            changes["data"] = overrides.data
        if overrides.max_retries is not None:
            changes["max_retries"] = overrides.max_retries
        return msgspec.structs.replace(call, **changes)

    return rewrite
