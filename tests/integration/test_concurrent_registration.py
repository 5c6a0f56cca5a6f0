"""Many API processes meeting new task types at the same moment: accepted, and capped exactly."""

from __future__ import annotations

import asyncio
import uuid

from taskq_core.database import create_async_pool
from taskq_core.errors import TooManyTaskTypesError
from taskq_core.models import QueuedCall
from taskq_core.repository.api import ApiRepository, Submission
from taskq_core.settings import Settings
from tests.support.api import counts


def one_call(task_type: str) -> Submission:
    """A new task of `task_type` with one call (to a port nothing listens on)."""
    task_id = uuid.uuid4()
    call = QueuedCall(
        task_id=str(task_id),
        payload_id=0,
        task_type=task_type,
        url="http://127.0.0.1:9/",
        method="POST",
        data=1,
    )
    return Submission(task_id=task_id, task_type=task_type, item_id="", max_rps=None, calls=[call])


async def race(settings: Settings, task_type: str, submitters: int) -> list[object]:
    pool = create_async_pool(settings, name="taskq-api")
    await pool.open()
    try:
        # One repository per submitter: separate API processes, no shared cache.
        repositories = [ApiRepository(pool) for _ in range(submitters)]

        async def submit(repository: ApiRepository) -> list[int]:
            return await repository.submit(one_call(task_type))

        jobs = [submit(repository) for repository in repositories]
        jobs.append(repositories[0].configure_task_type(task_type, 5.0))  # type: ignore[arg-type]
        return await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        await pool.close()


def test_concurrent_first_submissions_of_a_new_type_all_succeed(settings: Settings) -> None:
    for attempt in range(3):
        results = asyncio.run(race(settings, f"brand-new-{attempt}", submitters=6))
        errors = [result for result in results if isinstance(result, BaseException)]
        assert errors == []


async def race_for_the_last_types(settings: Settings, new_types: int, cap: int) -> list[object]:
    """`new_types` different new types submitted at once by as many API processes."""
    pool = create_async_pool(settings, name="taskq-api", max_size=new_types)
    await pool.open()
    try:

        async def submit(number: int) -> list[int]:
            repository = ApiRepository(pool, max_task_types=cap)
            return await repository.submit(one_call(f"crowd-{number}"))

        return await asyncio.gather(*(submit(n) for n in range(new_types)), return_exceptions=True)
    finally:
        await pool.close()


def test_concurrent_new_types_never_overshoot_max_task_types(
    settings: Settings, db_dsn: str
) -> None:
    results = asyncio.run(race_for_the_last_types(settings, new_types=12, cap=5))
    refused = [result for result in results if isinstance(result, TooManyTaskTypesError)]
    others = [
        result
        for result in results
        if isinstance(result, BaseException) and not isinstance(result, TooManyTaskTypesError)
    ]
    assert others == []
    assert (len(results) - len(refused), len(refused)) == (5, 7)
    assert counts(db_dsn)[1:] == (5, 5)
