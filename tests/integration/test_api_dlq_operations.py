"""GET /dlq, POST /dlq/purge, and reprocess by message_ids with overrides, with a real worker."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, dlq_length, queue_length
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def dead_batch(
    client: TestClient[Litestar], settings: Settings, target: Target, count: int, **fields: Any
) -> str:
    """Submit `count` calls that the target refuses (HTTP 422) and wait until all are dead."""
    target.responder = lambda _request: Reply(status=422)
    body = {
        "task_type": "dead",
        "url": f"https://user:hunter2@{target.url.removeprefix('http://')}/x?api_key=k1&page=2",
        "headers": {"Authorization": "Bearer s3cret", "X-Trace": "t1"},
        "payloads": [{"data": {"n": n}} for n in range(count)],
        **fields,
    }
    body["url"] = body["url"].replace("https://", "http://")
    with running_worker(settings):
        task_id = submit(client, body)
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, count))
    return task_id


def browse(client: TestClient[Litestar], **params: Any) -> dict[str, Any]:
    response = client.get("/dlq", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_browse_shows_why_and_what_with_credentials_redacted(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    task_id = dead_batch(client, settings, target, 3)
    body = browse(client)
    assert body["next_cursor"] is None
    letters = body["dead_letters"]
    assert sorted(letter["payload_id"] for letter in letters) == [0, 1, 2]
    ids = [letter["message_id"] for letter in letters]
    assert ids == sorted(ids, reverse=True)  # newest first
    letter = next(letter for letter in letters if letter["payload_id"] == 2)
    assert letter["task_id"] == task_id
    assert letter["task_type"] == "dead"
    assert letter["error"] == "HTTP 422"
    assert letter["http_status"] == 422
    assert letter["attempts"] == 1
    assert letter["failed_at"]
    call = letter["call"]
    assert call["headers"] == {"Authorization": "[redacted]", "X-Trace": "t1"}
    assert "hunter2" not in call["url"]
    assert "k1" not in call["url"]
    assert call["url"].endswith("/x?api_key=[redacted]&page=2")
    assert call["data"] == {"n": 2}
    assert "s3cret" not in str(body)
    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["dlq_message_id"] for row in rows} == {m["message_id"] for m in letters}


def test_browse_filters_and_pages(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    first = dead_batch(client, settings, target, 3)
    second = dead_batch(client, settings, target, 2, task_type="other")
    assert [m["task_id"] for m in browse(client, task_type="other")["dead_letters"]] == [second] * 2
    assert len(browse(client, task_id=first)["dead_letters"]) == 3
    assert browse(client, task_type="none")["dead_letters"] == []

    seen: list[int] = []
    page = browse(client, limit=2)
    seen += [m["message_id"] for m in page["dead_letters"]]
    while page["next_cursor"]:
        page = browse(client, limit=2, cursor=page["next_cursor"])
        seen += [m["message_id"] for m in page["dead_letters"]]
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)

    cursor = browse(client, limit=1, task_type="dead")["next_cursor"]
    other = client.get("/dlq", params={"task_type": "other", "cursor": cursor})
    assert other.status_code == 400
    assert other.json()["field"] == "cursor"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 100_000}, "limit"),
        ({"task_id": "nope"}, "task_id"),
        ({"task_type": ""}, "task_type"),
        ({"cursor": "abc.def"}, "cursor"),
    ],
)
def test_browse_bad_filters_are_400(
    client: TestClient[Litestar], params: dict[str, Any], field: str
) -> None:
    response = client.get("/dlq", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_purge_needs_a_filter_and_deletes_for_good(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    first = dead_batch(client, settings, target, 3)
    dead_batch(client, settings, target, 2, task_type="other")
    for body in ({}, {"message_ids": []}, {"task_type": None}):
        response = client.post("/dlq/purge", json=body)
        assert response.status_code == 400, body
    assert client.post("/dlq/purge", json={"task_id": "x"}).status_code == 400

    response = client.post("/dlq/purge", json={"task_id": first})
    assert response.json() == {"purged_count": 3}
    assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 2
    rows = statuses(settings.postgres_dsn, first)
    assert {(row["status"], row["dlq_message_id"]) for row in rows} == {("failed", None)}
    assert client.post("/dlq/purge", json={"task_id": first}).json() == {"purged_count": 0}
    assert client.post("/dlq/reprocess", json={"task_id": first}).json()["reprocessed_count"] == 0

    [one, _] = [m["message_id"] for m in browse(client)["dead_letters"]]
    assert client.post("/dlq/purge", json={"message_ids": [one]}).json() == {"purged_count": 1}
    assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 1


def test_reprocess_by_ids_with_overrides_edits_and_redrives(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    task_id = dead_batch(client, settings, target, 3)
    by_payload = {m["payload_id"]: m["message_id"] for m in browse(client)["dead_letters"]}
    chosen = [by_payload[2], by_payload[0]]
    target.responder = lambda _request: Reply(status=200)
    overrides = {
        "url": f"{target.url}/fixed",
        "headers": {"x-trace": "t2", "X-New": "1"},
        "data": {"fixed": True},
        "max_retries": 0,
    }
    with running_worker(settings):
        response = client.post(
            "/dlq/reprocess", json={"message_ids": chosen, "overrides": overrides}
        )
        assert response.status_code == 200, response.text
        assert response.json()["reprocessed_count"] == 2
        wait_until(
            lambda: (
                [row["status"] for row in statuses(settings.postgres_dsn, task_id)]
                == ["success", "failed", "success"]
            )
        )
    fixed = [request for request in target.requests_snapshot() if request.path == "/fixed"]
    assert len(fixed) == 2
    assert all(request.json() == {"fixed": True} for request in fixed)
    assert all(request.headers["x-trace"] == "t2" for request in fixed)
    assert all(request.headers["x-new"] == "1" for request in fixed)
    assert all(request.headers["authorization"] == "Bearer s3cret" for request in fixed)
    view = client.get(f"/tasks/{task_id}").json()
    assert view["statuses"][0]["payload"] == {"fixed": True}
    assert view["statuses"][1]["payload"] == {"n": 1}
    assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "ftp://example.com/x"}, "overrides.url"),
        ({"url": ""}, "overrides.url"),
        ({"headers": {"X-A": "line\r\nbreak"}}, "overrides.headers.X-A"),
        ({"headers": {"bad name": "v"}}, "overrides.headers"),
        ({"max_retries": -1}, "overrides.max_retries"),
        ({"max_retries": 10**20}, "overrides.max_retries"),
        ({"unknown": 1}, "overrides"),
    ],
)
def test_overrides_are_checked_like_a_submission(
    client: TestClient[Litestar], settings: Settings, overrides: dict[str, Any], field: str
) -> None:
    response = client.post("/dlq/reprocess", json={"task_type": "t", "overrides": overrides})
    assert response.status_code == 400, response.text
    assert (response.json()["field"] or "").startswith(field), response.json()


def test_overrides_obey_the_egress_policy(settings: Settings) -> None:
    guarded = dataclasses.replace(settings, egress_block_private=True)
    with api_client(guarded) as client:
        response = client.post(
            "/dlq/reprocess",
            json={"task_type": "t", "overrides": {"url": "http://169.254.169.254/latest"}},
        )
    assert response.status_code == 400
    assert response.json()["field"] == "overrides.url"
    assert "egress" in response.json()["detail"]


def test_reprocess_needs_a_filter(client: TestClient[Litestar]) -> None:
    for body in ({}, {"message_ids": []}, {"overrides": {"max_retries": 1}}):
        assert client.post("/dlq/reprocess", json=body).status_code == 400
    for ids in ([0], ["x"], list(range(1, 102)), [2**63]):
        response = client.post("/dlq/reprocess", json={"message_ids": ids})
        assert response.status_code == 400
        assert (response.json()["field"] or "").startswith("message_ids")


def test_concurrent_redrives_by_ids_requeue_each_message_once(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    dead_batch(client, settings, target, 30)
    with psycopg.connect(settings.postgres_dsn) as conn:
        ids = [int(row[0]) for row in conn.execute(SQL["test_dlq_ids"]).fetchall()]

    def redrive(_: int) -> dict[str, Any]:
        result: dict[str, Any] = client.post("/dlq/reprocess", json={"message_ids": ids}).json()
        return result

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(redrive, range(4)))
    new_ids = [message_id for result in results for message_id in result["message_ids"]]
    assert len(new_ids) == len(set(new_ids)) == 30
    assert queue_length(settings.postgres_dsn, "dead") == 30
    assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 0
