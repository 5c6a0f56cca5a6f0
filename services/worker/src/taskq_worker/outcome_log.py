"""Log lines about a message's outcome: retries and failures, never successes at INFO.

Successes are what the metrics count (a line per call would cost the hot path
and drown the rest); a retry or a failure is what someone will search for, so
it carries the message's identity and the target (without query string or
credentials). Header values are never logged.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from taskq_core.deliveries import (
    Delivery,
    Dropped,
    Failed,
    Outcome,
    RetryLater,
    Snoozed,
    Succeeded,
)
from taskq_core.redaction import loggable_url


def message_context(delivery: Delivery) -> dict[str, Any]:
    """The fields every line about a message carries."""
    call = delivery.call
    return {
        "task_id": call.task_id if call else None,
        "message_id": delivery.message_id,
        "task_type": delivery.task_type,
        "attempt": delivery.attempt + 1,  # 1-based, as sent in X-Taskq-Attempt
        "method": call.method if call else None,
        "url": loggable_url(call.url) if call else None,
    }


def log_outcome(outcome: Outcome) -> None:
    match outcome:
        case Succeeded():
            return
        case RetryLater():
            logger.bind(
                **message_context(outcome.delivery),
                http_status=outcome.http_status,
                error=outcome.error,
                retry_in_seconds=round(outcome.delay, 3),
                duration_ms=round(outcome.duration_ms, 1),
            ).info("call failed, retrying later: {}", outcome.error)
        case Snoozed(circuit_open=True):
            # One line per message during an outage would drown the log: the view
            # logs the host's opening and closing once per process instead.
            logger.bind(**message_context(outcome.delivery)).debug(
                "{}; waiting {:.3f} s, no attempt spent", outcome.error, outcome.delay
            )
        case Snoozed():
            logger.bind(
                **message_context(outcome.delivery),
                http_status=outcome.http_status,
                snoozes=outcome.delivery.snoozes + 1,
                snooze_seconds=round(outcome.delay, 3),
                duration_ms=round(outcome.duration_ms, 1),
            ).info(
                "target asked for time ({}); task type paused for {:.3f} s, no attempt spent",
                outcome.error,
                outcome.delay,
            )
        case Failed():
            logger.bind(
                **message_context(outcome.delivery),
                http_status=outcome.http_status,
                error=outcome.error,
                duration_ms=round(outcome.duration_ms, 1),
            ).warning("call failed for good, message moved to the DLQ: {}", outcome.error)
        case Dropped():
            logger.bind(**message_context(outcome.delivery)).debug(
                "message already final (a duplicate delivery); removed without a call"
            )
