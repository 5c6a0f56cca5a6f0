"""Queue calls straight through the repository, past the API's checks.

For messages the API would refuse today but a worker can still meet: queued
by an older release, or before a policy was switched on.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from taskq_core.database import create_async_pool
from taskq_core.models import QueuedCall
from taskq_core.repository.api import ApiRepository, Submission
from taskq_core.settings import Settings


def queue_directly(settings: Settings, task_type: str, calls: list[dict[str, Any]]) -> str:
    """One task of `calls` (QueuedCall fields beyond the ids); its task id."""
    task_id = uuid.uuid4()
    queued = [
        QueuedCall(task_id=str(task_id), payload_id=index, task_type=task_type, **fields)
        for index, fields in enumerate(calls)
    ]

    async def submit() -> None:
        pool = create_async_pool(settings, name="taskq-test")
        await pool.open()
        try:
            repository = ApiRepository(pool)
            await repository.submit(
                Submission(
                    task_id=task_id, task_type=task_type, item_id="", max_rps=None, calls=queued
                )
            )
        finally:
            await pool.close()

    asyncio.run(submit())
    return str(task_id)
