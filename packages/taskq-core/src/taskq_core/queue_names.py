"""The PGMQ queue that holds a task type's messages.

One queue per task type lets a worker read exactly as many messages of a type
as it may send (decision 3 of the design): a rate-limited backlog never sits in
front of another type's messages. Queue names must be short identifiers, so a
readable prefix is kept and a hash makes them unique.
"""

from __future__ import annotations

import hashlib
import re

QUEUE_PREFIX = "tq_"
_UNSAFE = re.compile(r"[^a-z0-9]+")


def queue_name_for(task_type: str) -> str:
    """A stable, unique PGMQ queue name of at most 47 characters for `task_type`."""
    readable = _UNSAFE.sub("_", task_type.lower()).strip("_")[:24]
    digest = hashlib.sha1(task_type.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{QUEUE_PREFIX}{readable}_{digest}" if readable else f"{QUEUE_PREFIX}{digest}"


CONFIG_CHANGED = "*"
"""The `taskq_work` notification payload that means "task types changed, re-read them".

No queue name contains `*`. Sent by pause and resume (sql/queries/operations.sql).
"""
