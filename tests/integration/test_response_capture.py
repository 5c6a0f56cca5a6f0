"""The first bytes of each reply, kept in the status row and shown by GET /tasks/{id} (issue 15)."""

from __future__ import annotations

import base64
from typing import Any

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, submit

BINARY = bytes(range(256)) * 2


def _reply(request: Received) -> Reply:
    kind = request.json()["kind"]  # type: ignore[index]
    if kind == "json":
        return Reply(status=201, body='{"id": "r-1", "name": "caf\u00e9"}'.encode())
    if kind == "big":
        return Reply(body=b"a" * 10_000)
    if kind == "binary":
        return Reply(body=BINARY)
    if kind == "refused":
        return Reply(status=422, body=b'{"error": "accountId is unknown"}')
    return Reply(status=503, body=b"upstream down")


def _view(settings: Settings, kinds: list[str], **overrides: Any) -> list[dict[str, Any]]:
    target = Target(_reply).start()
    try:
        with api_client(settings) as client, running_worker(settings, **overrides):
            task_id = submit(
                client,
                {
                    "url": target.url,
                    "max_retries": 1,
                    "retry_delay": 10,
                    "payloads": [{"data": {"kind": kind}} for kind in kinds],
                },
            )
            wait_until(lambda: all_final(settings.postgres_dsn, task_id, len(kinds)), timeout=20)
            statuses: list[dict[str, Any]] = client.get(f"/tasks/{task_id}").json()["statuses"]
            return statuses
    finally:
        target.stop()


def test_successes_and_failures_keep_the_start_of_their_last_reply(settings: Settings) -> None:
    json_reply, big, binary, refused, down = _view(
        settings, ["json", "big", "binary", "refused", "down"]
    )

    assert json_reply["status"] == "success"
    assert json_reply["response"] == {
        "body": '{"id": "r-1", "name": "caf\u00e9"}',
        "encoding": "utf-8",
        "content_type": "application/json",
        "truncated": False,
    }
    assert big["response"]["body"] == "a" * 4096
    assert big["response"]["truncated"] is True
    assert big["response"]["content_type"] == "application/json"
    assert binary["response"]["encoding"] == "base64"
    assert base64.b64decode(binary["response"]["body"]) == BINARY
    assert refused["status"] == "failed"
    assert refused["response"]["body"] == '{"error": "accountId is unknown"}'
    assert down["status"] == "failed"
    assert down["attempt"] == 1
    assert down["response"]["body"] == "upstream down"


def test_a_zero_capture_size_keeps_nothing(settings: Settings) -> None:
    (row,) = _view(settings, ["json"], response_capture_bytes=0)
    assert row["status"] == "success"
    assert row["response"] is None


def test_a_smaller_capture_size_cuts_at_a_character(settings: Settings) -> None:
    (row,) = _view(settings, ["json"], response_capture_bytes=27)
    # The 27th byte is the first of the two of "\u00e9": the character is dropped whole.
    assert row["response"]["body"] == '{"id": "r-1", "name": "caf'
    assert row["response"]["encoding"] == "utf-8"
    assert row["response"]["truncated"] is True
