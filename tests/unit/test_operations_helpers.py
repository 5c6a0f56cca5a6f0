"""Pure helpers behind the day-2 routes: cursors, task ids, URL redaction, redrive edits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from taskq_core.cursors import decode_cursor, encode_cursor
from taskq_core.durations import parse_duration
from taskq_core.egress import EgressPolicy
from taskq_core.errors import InvalidFieldError
from taskq_core.ids import created_at, new_task_id
from taskq_core.models import DlqOverrides, QueuedCall
from taskq_core.redaction import redact_url
from taskq_core.settings import Settings
from taskq_core.submission import redrive_rewriter

FILTERS = {"task_type": "a", "status": None}


def test_a_cursor_round_trips_under_its_filters() -> None:
    token = encode_cursor("tasks", FILTERS, ["2026-11-30T10:00:00+00:00", "abc"])
    assert decode_cursor(token, "tasks", dict(FILTERS)) == ["2026-11-30T10:00:00+00:00", "abc"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1],
        lambda token: token.replace(".", ""),
        lambda token: "A" + token,
        lambda token: token + "=",
        lambda token: "",
        lambda token: "\u00e9\u00e9.\udcff",
        lambda token: "." * 2000,
    ],
)
def test_a_mangled_cursor_is_refused(mangle: object) -> None:
    token = encode_cursor("tasks", FILTERS, [1])
    with pytest.raises(InvalidFieldError) as raised:
        decode_cursor(mangle(token), "tasks", FILTERS)  # type: ignore[operator]
    assert raised.value.field == "cursor"


def test_a_cursor_is_bound_to_kind_and_filters() -> None:
    token = encode_cursor("tasks", FILTERS, [1])
    with pytest.raises(InvalidFieldError, match="another listing"):
        decode_cursor(token, "dlq", FILTERS)
    with pytest.raises(InvalidFieldError, match="other filters"):
        decode_cursor(token, "tasks", {**FILTERS, "status": "failed"})


def test_task_ids_are_uuid7_and_tell_their_time() -> None:
    before = datetime.now(UTC)
    ids = [new_task_id() for _ in range(1000)]
    assert all(task_id.version == 7 for task_id in ids)
    assert len(set(ids)) == 1000
    made = created_at(ids[0])
    assert made is not None
    assert before - timedelta(milliseconds=2) <= made <= datetime.now(UTC)
    assert created_at(uuid4()) is None
    earlier = new_task_id(now_ms=int(time.time() * 1000) - 5000)
    later = new_task_id()
    assert str(earlier) < str(later)  # time-ordered, as text and as index keys
    assert UUID(str(later)) == later


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.com/x?page=2", "https://api.example.com/x?page=2"),
        ("https://u:pw@api.example.com/x", "https://u:[redacted]@api.example.com/x"),
        (
            "https://api.example.com/x?api_key=s&page=2&token=t",
            "https://api.example.com/x?api_key=[redacted]&page=2&token=[redacted]",
        ),
        ("https://u@api.example.com/", "https://u@api.example.com/"),
        ("http://[::1", "[unparseable url]"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_retention_settings() -> None:
    defaults = Settings.from_env({})
    assert defaults.status_retention == 7 * 86400
    assert defaults.dlq_retention is None
    custom = Settings.from_env({"STATUS_RETENTION": "never", "DLQ_RETENTION": "30d"})
    assert custom.status_retention is None
    assert custom.dlq_retention == 30 * 86400
    assert parse_duration("1d12h") == 36 * 3600
    with pytest.raises(Exception, match="STATUS_RETENTION"):
        Settings.from_env({"STATUS_RETENTION": "0s"})


CALL = QueuedCall(
    task_id=str(uuid4()),
    payload_id=0,
    task_type="t",
    url="https://old.example.com",
    method="POST",
    headers={"Authorization": "Bearer a", "X-Keep": "1"},
    data={"n": 1},
    max_retries=3,
)


def test_redrive_edits_only_what_is_given() -> None:
    unchanged = redrive_rewriter(DlqOverrides())(CALL)
    assert unchanged == CALL
    edited = redrive_rewriter(
        DlqOverrides(
            url="https://new.example.com",
            headers={"authorization": "Bearer b"},
            data=None,
            max_retries=0,
        )
    )(CALL)
    assert edited.url == "https://new.example.com"
    assert edited.headers == {"X-Keep": "1", "authorization": "Bearer b"}
    assert edited.data is None  # an explicit null replaces the body
    assert edited.max_retries == 0
    assert (edited.task_id, edited.payload_id) == (CALL.task_id, CALL.payload_id)


def test_redrive_edits_are_checked_before_anything_runs() -> None:
    with pytest.raises(InvalidFieldError) as raised:
        redrive_rewriter(DlqOverrides(url="http://10.0.0.1/x"), EgressPolicy(block_private=True))
    assert raised.value.field == "overrides.url"
    with pytest.raises(InvalidFieldError):
        redrive_rewriter(DlqOverrides(headers={"X": "a\nb"}))
    decoded = msgspec.json.decode(b'{"data": null}', type=DlqOverrides)
    assert decoded.data is None
    assert msgspec.json.decode(b"{}", type=DlqOverrides).data is msgspec.UNSET
