"""Idempotency-Key on POST /tasks through the real app and database (issue 15)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, batch, counts, queue_length


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def _keys(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [str(row[0]) for row in conn.execute(SQL["test_idempotency_keys"]).fetchall()]


def _expire(dsn: str, *keys: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(SQL["test_expire_idempotency_keys"], {"keys": list(keys)})


def test_a_repeat_returns_the_first_answer_and_queues_nothing(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/tasks", json=batch(3), headers=headers)
    again = client.post("/tasks", json=batch(3), headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert queue_length(db_dsn, "sync") == 3
    assert counts(db_dsn)[0] == 3
    scraped = client.get("/metrics").text
    assert 'taskq_api_submissions_replayed_total{task_type="sync"} 1.0' in scraped
    assert 'taskq_api_tasks_accepted_total{task_type="sync"} 1.0' in scraped


def test_the_body_is_compared_in_canonical_form(client: TestClient[Litestar]) -> None:
    body = batch(2)
    reordered = dict(reversed(list(body.items())))
    first = client.post("/tasks", json=body, headers={"Idempotency-Key": "k1"})
    again = client.post(
        "/tasks",
        content=_spaced(reordered),
        headers={"Idempotency-Key": "k1", "Content-Type": "application/json"},
    )

    assert again.status_code == 201
    assert again.json() == first.json()


def _spaced(body: dict[str, object]) -> bytes:
    return json.dumps(body, indent=4).encode()


def test_the_same_key_with_another_body_is_a_conflict_naming_the_header(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    client.post("/tasks", json=batch(1), headers={"Idempotency-Key": "k"})
    changed = batch(1)
    changed["payloads"][0]["data"] = {"n": 99}

    response = client.post("/tasks", json=changed, headers={"Idempotency-Key": "k"})

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert response.json()["field"] == "Idempotency-Key"
    assert "different request body" in response.json()["detail"]
    assert queue_length(db_dsn, "sync") == 1
    scraped = client.get("/metrics").text
    assert 'taskq_api_submissions_rejected_total{reason="idempotency_conflict"} 1.0' in scraped


def test_without_a_key_every_submission_is_new(client: TestClient[Litestar], db_dsn: str) -> None:
    first = client.post("/tasks", json=batch(1)).json()
    second = client.post("/tasks", json=batch(1)).json()

    assert first["task_id"] != second["task_id"]
    assert _keys(db_dsn) == []


def test_an_expired_key_starts_a_new_task_and_claims_purge_other_expired_keys(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    old = client.post("/tasks", json=batch(1), headers={"Idempotency-Key": "a"}).json()
    client.post("/tasks", json=batch(1), headers={"Idempotency-Key": "b"})
    _expire(db_dsn, "a", "b")

    # "a" expired: a new task, even with another body; claiming it purged expired "b".
    changed = batch(2)
    fresh = client.post("/tasks", json=changed, headers={"Idempotency-Key": "a"})

    assert fresh.status_code == 201
    assert fresh.json()["task_id"] != old["task_id"]
    assert len(fresh.json()["message_ids"]) == 2
    assert _keys(db_dsn) == ["a"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "must not be empty"),
        (b"x" * 256, "at most 255 characters"),
        (b"has space", "visible ASCII"),
        (b"tab\there", "visible ASCII"),
        ("caf\u00e9".encode(), "visible ASCII"),
        (b"\xff\xfe", "visible ASCII"),
    ],
)
def test_a_bad_key_is_a_400_naming_the_header(
    client: TestClient[Litestar], db_dsn: str, value: bytes, reason: str
) -> None:
    response = client.post("/tasks", json=batch(1), headers=[(b"Idempotency-Key", value)])

    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"
    assert reason in response.json()["detail"]
    assert counts(db_dsn)[0] == 0


def test_a_refused_batch_does_not_use_up_its_key(client: TestClient[Litestar], db_dsn: str) -> None:
    bad = batch(1, url="ftp://example.com/")
    assert client.post("/tasks", json=bad, headers={"Idempotency-Key": "k"}).status_code == 400

    good = client.post("/tasks", json=batch(1), headers={"Idempotency-Key": "k"})

    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers
    assert _keys(db_dsn) == ["k"]
