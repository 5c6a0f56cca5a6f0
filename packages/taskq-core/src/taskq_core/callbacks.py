"""Callbacks (issue 15): what a message's final state sends to its batch's callback URLs.

A callback is an ordinary queued call in the derived task type
"<type>:callbacks", so it shares that type's rate budget, retries, timeout and
signing (all set with POST /task-types) and goes through the normal delivery
path and egress policy. Semantics follow QStash: `callback_url` hears of
successes only, `failure_callback_url` of messages moved to the DLQ; a batch
with only `callback_url` is told nothing about its failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

from taskq_core.capture import CapturedResponse
from taskq_core.deliveries import Failed, Succeeded
from taskq_core.models import QueuedCall, ResponseView

CALLBACK_TYPE_SUFFIX = ":callbacks"
CallbackKind = Literal["success", "failure"]
_encode = msgspec.json.Encoder().encode


def callback_type_for(task_type: str) -> str:
    """The task type whose queue and limits a type's callbacks go through."""
    return task_type + CALLBACK_TYPE_SUFFIX


def wants_callbacks(call: QueuedCall) -> bool:
    return call.callback_url is not None or call.failure_callback_url is not None


class CallbackDocument(msgspec.Struct, frozen=True):
    """The JSON body POSTed to a callback URL."""

    task_id: str
    message_id: int
    payload_id: int
    item_id: str
    task_type: str
    status: Literal["success", "failed"]
    attempts: int  # calls made, the last one included
    http_status: int | None
    duration_ms: float  # of the last call
    error: str
    response: ResponseView | None = None  # null when response capture is off


@dataclass(frozen=True, slots=True)
class PendingCallback:
    """A callback to enqueue in the transaction that records its message's final state."""

    task_id: str
    payload_id: int
    origin_message_id: int
    kind: CallbackKind
    task_type: str  # the callback type, whose queue receives `message`
    message: str  # the callback's QueuedCall as JSON


def callback_for(outcome: Succeeded | Failed) -> PendingCallback | None:
    """The callback a final outcome owes, if its batch asked for one (never for a callback)."""
    delivery, call = outcome.delivery, outcome.delivery.call
    if call is None or call.callback_of is not None:
        return None
    success = isinstance(outcome, Succeeded)
    url = call.callback_url if success else call.failure_callback_url
    if url is None:
        return None
    document = CallbackDocument(
        task_id=call.task_id,
        message_id=delivery.message_id,
        payload_id=call.payload_id,
        item_id=call.item_id,
        task_type=call.task_type,
        status="success" if success else "failed",
        attempts=delivery.attempt + 1,
        http_status=outcome.http_status,
        duration_ms=round(outcome.duration_ms, 3),
        error="" if isinstance(outcome, Succeeded) else outcome.error,
        response=_response(outcome.response),
    )
    callback_type = callback_type_for(call.task_type)
    message = QueuedCall(
        task_id=call.task_id,
        payload_id=call.payload_id,
        task_type=callback_type,
        url=url,
        method="POST",
        # The batch's headers were meant for its target (credentials, often): never
        # sent to the callback URL. The callback type's default headers apply.
        data=document,
        item_id=call.item_id,
        callback_of=call.task_type,
    )
    return PendingCallback(
        task_id=call.task_id,
        payload_id=call.payload_id,
        origin_message_id=delivery.message_id,
        kind="success" if success else "failure",
        task_type=callback_type,
        message=_encode(message).decode(),
    )


def _response(kept: CapturedResponse | None) -> ResponseView | None:
    if kept is None:
        return None
    return ResponseView(
        body=kept.body,
        encoding=kept.encoding,
        content_type=kept.content_type,
        truncated=kept.truncated,
    )
