"""Twenty clients repeat one Idempotency-Key at once against `taskq-api` (granian, 2 workers)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import ApiProcess
from tests.support.api import batch, counts, queue_length

pytestmark = pytest.mark.e2e
CLIENTS = 20


def test_concurrent_repeats_of_a_key_create_exactly_one_task(
    api_process: ApiProcess, db_dsn: str
) -> None:
    start = threading.Barrier(CLIENTS)
    body = batch(5, task_type="once")

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=f"http://{api_process.address}", timeout=30) as client:
            start.wait()
            return client.post("/tasks", json=body, headers={"Idempotency-Key": "same-key"})

    with ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(submit, range(CLIENTS)))

    assert [response.status_code for response in responses] == [201] * CLIENTS
    answers = {response.content for response in responses}
    assert len(answers) == 1
    replayed = [response.headers.get("Idempotent-Replayed") for response in responses]
    assert replayed.count(None) == 1
    assert replayed.count("true") == CLIENTS - 1
    assert queue_length(db_dsn, "once") == 5
    assert counts(db_dsn)[0] == 5
