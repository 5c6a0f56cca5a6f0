"""The lifecycle of one queued call (one payload of a task)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Status of one message; the first three are the reference's values.

    A message waiting for a retry stays PENDING with `attempt` and `error` set.
    SUCCESS is final; FAILED only leaves through a DLQ reprocess.
    """

    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
