"""GET /tasks: newest first, filters, opaque cursors, a plan that does not grow with the table."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.queries import QUERIES
from taskq_core.repository.operations import INDEXED_STATUSES
from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, batch, fail_everything


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def submit(client: TestClient[Litestar], count: int, **fields: Any) -> str:
    body = {**batch(count), **fields}
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def page(client: TestClient[Litestar], **params: Any) -> dict[str, Any]:
    response = client.get("/tasks", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_lists_newest_first_with_counts_and_pages_through_everything(
    client: TestClient[Litestar], settings: Settings
) -> None:
    ids = [submit(client, 2, task_type="a" if n % 2 else "b", item_id=f"i{n}") for n in range(7)]
    fail_everything(settings.postgres_dsn, "a", settings.dlq_queue_name)

    first = page(client, limit=3)
    assert [task["task_id"] for task in first["tasks"]] == ids[::-1][:3]
    seen = [task["task_id"] for task in first["tasks"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        following = page(client, limit=3, cursor=cursor)
        seen += [task["task_id"] for task in following["tasks"]]
        cursor = following["next_cursor"]
    assert seen == ids[::-1]

    newest = first["tasks"][0]
    assert newest["task_type"] == "b"
    assert newest["item_id"] == "i6"
    assert newest["message_count"] == 2
    assert newest["counts"] == {"pending": 2, "success": 0, "failed": 0, "cancelled": 0}
    assert first["tasks"][1]["counts"] == {"pending": 0, "success": 0, "failed": 2, "cancelled": 0}


def test_filters_combine(client: TestClient[Litestar], settings: Settings) -> None:
    before = datetime.now(UTC)
    a1 = submit(client, 1, task_type="a", item_id="x")
    b1 = submit(client, 1, task_type="b", item_id="x")
    a2 = submit(client, 1, task_type="a", item_id="y")
    fail_everything(settings.postgres_dsn, "b", settings.dlq_queue_name)

    def ids(**params: Any) -> list[str]:
        return [task["task_id"] for task in page(client, **params)["tasks"]]

    assert ids(task_type="a") == [a2, a1]
    assert ids(item_id="x") == [b1, a1]
    assert ids(task_type="a", item_id="x") == [a1]
    assert ids(status="failed") == [b1]
    assert ids(status="pending", item_id="x") == [a1]
    assert ids(status="cancelled") == []
    assert ids(created_after=before.isoformat()) == [a2, b1, a1]
    assert ids(created_before=before.isoformat()) == []
    assert ids(created_after=(before + timedelta(hours=1)).isoformat()) == []
    assert ids(task_type="nope") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 100_000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "0.5"}, "created_after"),
        ({"created_before": "2026-13-45"}, "created_before"),
        ({"task_type": ""}, "task_type"),
        ({"task_type": "x" * 201}, "task_type"),
        ({"item_id": "nul\x00"}, "item_id"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "x" * 5000}, "cursor"),
    ],
)
def test_bad_filters_are_400_naming_the_field(
    client: TestClient[Litestar], params: dict[str, Any], field: str
) -> None:
    response = client.get("/tasks", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field, body
    assert set(body) == {"status_code", "error", "detail", "field"}


def test_cursors_are_bound_to_their_filters_and_checked(client: TestClient[Litestar]) -> None:
    for _ in range(3):
        submit(client, 1, task_type="a")
    cursor = page(client, task_type="a", limit=1)["next_cursor"]
    assert cursor

    other_filter = client.get("/tasks", params={"task_type": "b", "limit": 1, "cursor": cursor})
    no_filter = client.get("/tasks", params={"limit": 1, "cursor": cursor})
    payload, checksum = cursor.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded[3][1] = "00000000-0000-0000-0000-000000000000"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    tampered = client.get("/tasks", params={"task_type": "a", "cursor": f"{forged}.{checksum}"})
    truncated = client.get("/tasks", params={"task_type": "a", "cursor": cursor[:-3]})
    for response in (other_filter, no_filter, tampered, truncated):
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "cursor"
    assert "other filters" in other_filter.json()["detail"]
    # The limit is not a filter: a page size may change between pages.
    assert client.get("/tasks", params={"task_type": "a", "limit": 5, "cursor": cursor}).is_success


def test_a_cursor_from_another_listing_or_version_is_refused(client: TestClient[Litestar]) -> None:
    from taskq_core import cursors

    dlq_cursor = cursors.encode_cursor("dlq", {"task_type": None, "task_id": None}, [5])
    response = client.get("/tasks", params={"cursor": dlq_cursor})
    assert response.status_code == 400
    assert "another listing" in response.json()["detail"]

    stale = cursors._Body(0, "tasks", "0", ["2026-01-01T00:00:00+00:00", "x"])
    payload = base64.urlsafe_b64encode(cursors.msgspec.json.encode(stale)).rstrip(b"=")
    token = f"{payload.decode()}.{cursors._checksum(payload)}"
    response = client.get("/tasks", params={"cursor": token})
    assert response.status_code == 400
    assert "stale" in response.json()["detail"]


def plan_of(dsn: str, params: dict[str, Any]) -> dict[str, Any]:
    full = {
        "task_type": None,
        "status": None,
        "item_id": None,
        "created_after": None,
        "created_before": None,
        "after_created_at": None,
        "after_task_id": None,
        "limit": 51,
        **params,
    }
    with psycopg.connect(dsn) as conn:
        query = "list_tasks_in_status" if full["status"] in INDEXED_STATUSES else "list_tasks"
        row = conn.execute(
            f"{SQL['test_explain']} {QUERIES[query]}", full, prepare=False
        ).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


PLANNED_FILTERS: list[dict[str, Any]] = [
    {},
    {"task_type": "type-3"},
    {"item_id": "item-42"},
    {"status": "success"},
    {"status": "pending"},
    {"status": "failed"},
    {"status": "cancelled", "task_type": "type-0"},
    {
        "status": "failed",
        "after_created_at": "2026-11-29T00:00:00+00:00",
        "after_task_id": "ffffffff-0000-0000-0000-000000000000",
    },
    {"created_before": "2026-11-01T00:00:00+00:00"},
    {"task_type": "type-3", "item_id": "item-43"},
    {
        "after_created_at": "2026-11-29T00:00:00+00:00",
        "after_task_id": "ffffffff-0000-0000-0000-000000000000",
    },
]


def test_a_page_is_an_index_scan_under_a_limit_never_a_sort_of_the_table(db_dsn: str) -> None:
    """At 50,000 tasks as at 10 million: a page reads LIMIT rows off an index.

    The planner may sort the few rows of a very selective filter (one item of
    one type: 50 rows here) rather than walk an index in order, or the page
    it has read; it never sorts, nor scans, the table. Failed and cancelled,
    and pending are found by a loose scan of an index of their own.
    """
    with psycopg.connect(db_dsn) as conn:
        conn.execute(SQL["test_fill_tasks"], {"count": 50_000})
        conn.commit()
        conn.execute(SQL["test_analyze"])
        conn.commit()
    for params in PLANNED_FILTERS:
        plan = plan_of(db_dsn, params)
        kinds = [node["Node Type"] for node in nodes(plan)]
        assert "Limit" in kinds, (params, kinds)
        assert "Seq Scan" not in kinds, (params, kinds)
        for node in nodes(plan):
            if "Sort" in node["Node Type"]:
                # Sorting a page (its input under a LIMIT) or a handful of rows is fine.
                bounded = any(
                    inner["Node Type"] == "Limit" and inner["Plan Rows"] <= 100
                    for inner in nodes(node)
                )
                assert bounded or node["Plans"][0]["Plan Rows"] <= 100, (params, node)
        indexes = {node.get("Index Name", "") for node in nodes(plan)}
        expected = (
            "task_status_unsettled_newest"
            if params.get("status") in INDEXED_STATUSES
            else "tasks_newest"
        )
        assert any(index.startswith(expected) for index in indexes), (params, indexes)
        assert "Hash Join" not in kinds, (params, kinds)
