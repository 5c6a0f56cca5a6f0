"""429 means "later", not "failed" (design decision 11), across two worker processes.

A target answers 429 with Retry-After (seconds, or an HTTP date): the whole
task type waits until then on every replica, the message spends no attempt,
its snooze count grows, and a target that never stops answering 429 ends the
message in the DLQ with an error that says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from taskq_core.settings import Settings
from taskq_dev.queries import DEV_QUERIES
from tests.support.api import api_client
from tests.support.processes import start_worker, stop
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, statuses, submit_many

# Calls already read (or in flight) when the 429 arrives may still go out
# while the snooze is being written; none may start after this.
IN_FLIGHT_GRACE = 0.35


class RateLimitedOnce:
    """Answers 200, except the third call, which gets 429 with the Retry-After `header` makes."""

    def __init__(self, header: Callable[[], str]) -> None:
        self._header = header
        self._lock = threading.Lock()
        self._calls = 0
        self.refused_at: float | None = None  # time.monotonic() of the 429
        self.refused_wall: datetime | None = None
        self.retry_after = ""

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            self._calls += 1
            if self._calls != 3:
                return Reply()
            self.refused_at = request.at
            self.refused_wall = datetime.now(UTC)
            self.retry_after = self._header()
            return Reply(status=429, headers={"Retry-After": self.retry_after})


@contextmanager
def two_workers(settings: Settings, tmp_path: Path, **overrides: object) -> Iterator[None]:
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [start_worker(settings, log, MAX_WORKERS=4, **overrides) for log in logs]
    try:
        # Both running before the test goes on: a quick test must not stop a
        # worker before it has installed its SIGTERM handler.
        wait_until(lambda: all("worker started" in log.read_text() for log in logs), timeout=30)
        yield
    finally:
        assert [stop(worker) for worker in workers] == [0, 0]


def seconds_header() -> str:
    return "2"


def date_header() -> str:
    # An HTTP date has whole seconds: 3 s ahead, truncated, is 2 to 3 s away.
    return format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)


@pytest.mark.slow
@pytest.mark.parametrize("header", [seconds_header, date_header], ids=["seconds", "http-date"])
def test_a_429_pauses_the_type_on_every_replica_until_retry_after_without_an_attempt(
    settings: Settings, target: Target, tmp_path: Path, header: Callable[[], str]
) -> None:
    responder = RateLimitedOnce(header)
    target.responder = responder
    total = 30
    with api_client(settings) as client:
        response = client.post("/task-types", json={"task_type": "snoozy", "max_rps": 10})
        assert response.status_code in (200, 201), response.text
        task_id = submit_many(client, "snoozy", target.url, total)
    with two_workers(settings, tmp_path):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, total), timeout=30)

    assert responder.refused_at is not None
    assert responder.refused_wall is not None
    if responder.retry_after.isdigit():
        resume_at = responder.refused_at + float(responder.retry_after)
    else:
        asked = datetime.strptime(responder.retry_after, "%a, %d %b %Y %H:%M:%S GMT")
        wait = (asked.replace(tzinfo=UTC) - responder.refused_wall).total_seconds()
        assert wait > 1.5, responder.retry_after
        resume_at = responder.refused_at + wait
    arrivals = [request.at for request in target.requests_snapshot()]
    assert len(arrivals) == total + 1  # every message once, the refused one twice
    during_pause = [
        round(at - responder.refused_at, 3)
        for at in arrivals
        if responder.refused_at + IN_FLIGHT_GRACE < at < resume_at
    ]
    assert during_pause == []
    resumed = [at for at in arrivals if at >= resume_at]
    assert resumed, "nothing was sent after the snooze"

    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"success"}
    # No message spent an attempt; exactly one was snoozed, once.
    assert {row["attempt"] for row in rows} == {0}
    assert sorted(row["snoozes"] for row in rows) == [0] * (total - 1) + [1]


@pytest.mark.slow
def test_a_target_that_always_answers_429_ends_in_the_dlq_after_max_snoozes(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    target.responder = lambda _request: Reply(status=429, headers={"Retry-After": "1"})
    with api_client(settings) as client:
        task_id = submit_many(client, "refused", target.url, 2)
    seen: list[int] = []
    with two_workers(settings, tmp_path, MAX_SNOOZES=3, MAX_RETRIES=1):

        def finished() -> bool:
            rows = statuses(settings.postgres_dsn, task_id)
            seen.extend(row["snoozes"] for row in rows)
            return all(row["status"] != "pending" for row in rows)

        wait_until(finished, timeout=30)

    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"failed"}
    for row in rows:
        assert row["attempt"] == 0  # MAX_RETRIES=1 would have failed it after 2 calls
        assert row["snoozes"] == 3
        assert row["http_status"] == 429
        assert "rate limited" in row["error"]
        assert "3 snoozes (MAX_SNOOZES)" in row["error"]
    # The first call and three snoozed ones, per message. Delivery is at least
    # once: a read that races the commit of a snooze can see the status row from
    # before it (READ COMMITTED) and make one extra call, never an extra snooze.
    assert 2 * 4 <= target.count() <= 2 * 4 + 2
    assert len(set(seen)) >= 2  # the count grew while it ran
    assert max(seen) == 3
    with psycopg.connect(settings.postgres_dsn) as conn:
        cursor = conn.cursor(row_factory=dict_row)
        dead = cursor.execute(
            DEV_QUERIES["test_queue_messages"], {"queue": settings.dlq_queue_name}
        ).fetchall()
    assert len(dead) == 2


@pytest.mark.slow
def test_a_503_without_retry_after_spends_an_attempt_with_it_snoozes(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    def respond(request: Received) -> Reply:
        if request.path == "/plain":
            return Reply(status=503)
        return Reply(status=503, headers={"Retry-After": "0"})

    target.responder = respond
    with api_client(settings) as client:
        plain = submit_many(client, "plain503", f"{target.url}/plain", 1)
        asked = submit_many(client, "asked503", f"{target.url}/asked", 1)
    with two_workers(settings, tmp_path, MAX_SNOOZES=2, MAX_RETRIES=2):
        wait_until(
            lambda: (
                all_final(settings.postgres_dsn, plain, 1)
                and all_final(settings.postgres_dsn, asked, 1)
            ),
            timeout=30,
        )
    [plain_row] = statuses(settings.postgres_dsn, plain)
    [asked_row] = statuses(settings.postgres_dsn, asked)
    assert (plain_row["attempt"], plain_row["snoozes"]) == (2, 0)
    assert (asked_row["attempt"], asked_row["snoozes"]) == (0, 2)
