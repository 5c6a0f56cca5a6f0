"""Poison messages end: a message the worker itself fails on spends its attempts and is parked.

The messages are altered in the queue directly (the API refuses such input,
or will): what is tested is the worker's answer to whatever is in its queue.
"""

from __future__ import annotations

import psycopg
import pytest
from loguru import logger

from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from taskq_dev.queries import DEV_QUERIES
from tests.support import faults
from tests.support.api import api_client
from tests.support.target import Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit


def dlq_messages(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(DEV_QUERIES["test_queue_messages"], {"queue": "task_dlq"}).fetchall()


def test_a_header_the_http_client_cannot_encode_spends_attempts_and_ends_in_the_dlq(
    settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a proxy the call takes urllib3's path, where http.client raises
    # UnicodeEncodeError while sending: an error taskq did not foresee. (The
    # request is never written, so the target standing in as proxy sees nothing.)
    for name in ("ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, target.url)
    dsn = settings.postgres_dsn
    with api_client(settings) as client:
        task_id = submit(
            client,
            {
                "task_type": "poison",
                "url": target.url,
                "max_retries": 2,
                "retry_delay_ms": 50,
                "payloads": [{"data": 1}],
            },
        )
    faults.run(
        dsn,
        "fault_set_headers",
        {"headers": '{"X-Note": "caf\\u00e9 \\u20ac"}'},
        queue=faults.queue_table("poison"),
    )
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message} {exception}", level="WARNING")
    try:
        with running_worker(settings):
            wait_until(lambda: all_final(dsn, task_id, 1), timeout=20)
    finally:
        logger.remove(sink)
    assert any("unexpected error while delivering: UnicodeEncodeError at" in line for line in lines)
    assert not any("\u20ac" in line or "\\u20ac" in line for line in lines), "no header value"
    [row] = statuses(dsn, task_id)
    assert row["status"] == "failed"
    assert row["attempt"] == 2, "every attempt counted: the first and two retries"
    assert row["error"] == "worker error: UnicodeEncodeError (gave up after 3 attempts)"
    assert "\u20ac" not in row["error"]
    assert len(dlq_messages(dsn)) == 1
    assert target.count() == 0


def test_a_message_whose_keys_do_not_parse_goes_to_the_dlq_and_its_type_keeps_flowing(
    settings: Settings, target: Target
) -> None:
    dsn = settings.postgres_dsn
    with api_client(settings) as client:
        first = submit(client, {"task_type": "mixed", "url": target.url, "payloads": [{"data": 1}]})
    # A task_id that is no uuid used to make every read of the queue fail.
    faults.run(
        dsn,
        "fault_send_raw",
        {
            "queue": queue_name_for("mixed"),
            "message": '{"task_id": "not-a-uuid", "payload_id": "x", "url": "http://x"}',
        },
    )
    with running_worker(settings):
        wait_until(lambda: len(dlq_messages(dsn)) == 1, timeout=15)
        with api_client(settings) as client:
            second = submit(
                client, {"task_type": "mixed", "url": target.url, "payloads": [{"data": 2}]}
            )
        wait_until(lambda: all_final(dsn, first, 1) and all_final(dsn, second, 1), timeout=15)
    assert {row["status"] for row in statuses(dsn, first) + statuses(dsn, second)} == {"success"}


def test_a_header_libcurl_cannot_send_is_refused_at_once_by_name(
    settings: Settings, target: Target
) -> None:
    dsn = settings.postgres_dsn
    with api_client(settings) as client:
        task_id = submit(
            client,
            {"task_type": "unsendable", "url": target.url, "max_retries": 2, "payloads": [{}]},
        )
    faults.run(
        dsn,
        "fault_set_headers",
        {"headers": '{"X-Note": "caf\\u00e9 \\u20ac"}'},
        queue=faults.queue_table("unsendable"),
    )
    with running_worker(settings):
        wait_until(lambda: all_final(dsn, task_id, 1), timeout=20)
    [row] = statuses(dsn, task_id)
    assert (row["status"], row["attempt"]) == ("failed", 0), "sending it again cannot succeed"
    assert row["error"] == "invalid request: header 'X-Note' has a value the HTTP client refuses"
    assert target.count() == 0
