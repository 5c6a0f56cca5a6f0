"""When a payload may first be delivered: delay and not_before (issue 15), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from taskq_core.errors import InvalidFieldError
from taskq_core.models import TaskSubmit
from taskq_core.scheduling import parse_rfc3339, scheduled_times

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
DAY = 86400.0


def _submit(**fields: Any) -> TaskSubmit:
    body = {"url": "http://127.0.0.1:9/", "payloads": [{}], **fields}
    return msgspec.convert(body, TaskSubmit)


def _times(**fields: Any) -> list[datetime | None]:
    return scheduled_times(_submit(**fields), now=NOW, max_ahead=30 * DAY)


def test_no_schedule_means_at_once() -> None:
    assert _times() == [None]


@pytest.mark.parametrize(
    ("delay", "seconds"), [(1500, 1.5), ("1500ms", 1.5), ("2m", 120.0), ("1h30m", 5400.0)]
)
def test_a_delay_is_milliseconds_or_a_duration(delay: object, seconds: float) -> None:
    assert _times(delay=delay) == [NOW + timedelta(seconds=seconds)]


def test_a_zero_delay_means_at_once() -> None:
    assert _times(delay=0) == [None]
    assert _times(delay="0s") == [None]


def test_not_before_is_kept_as_utc() -> None:
    assert _times(not_before="2030-01-01T15:00:00+02:00") == [NOW + timedelta(hours=1)]
    assert _times(not_before="2030-01-01T14:00:00+02:00") == [None]  # exactly now: at once
    assert _times(not_before="2030-01-01T12:00:01.5Z") == [NOW + timedelta(seconds=1.5)]


def test_not_before_in_the_past_means_now() -> None:
    assert _times(not_before="1999-12-31T23:59:59Z") == [None]


def test_a_payload_setting_replaces_the_batch_one() -> None:
    submit = _submit(
        delay="10s",
        payloads=[{}, {"delay": 0}, {"not_before": "2030-01-01T13:00:00Z"}, {"delay": "1s"}],
    )
    assert scheduled_times(submit, now=NOW, max_ahead=DAY) == [
        NOW + timedelta(seconds=10),
        None,
        NOW + timedelta(hours=1),
        NOW + timedelta(seconds=1),
    ]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"delay": -1}, "delay", "must not be negative"),
        ({"delay": "-5s"}, "delay", "must not be negative"),
        ({"delay": "soon"}, "delay", "not a duration"),
        ({"delay": "31d"}, "delay", "MAX_SCHEDULE_AHEAD"),
        ({"delay": 31 * 86_400_000}, "delay", "MAX_SCHEDULE_AHEAD"),
        ({"delay": 10**30}, "delay", "MAX_SCHEDULE_AHEAD"),
        ({"not_before": "2030-03-01T00:00:00Z"}, "not_before", "MAX_SCHEDULE_AHEAD"),
        ({"not_before": "tomorrow"}, "not_before", "RFC 3339"),
        ({"not_before": "2030-01-02T03:04:05"}, "not_before", "RFC 3339"),
        ({"not_before": "2030-01-02"}, "not_before", "RFC 3339"),
        ({"not_before": "2030-13-45T03:04:05Z"}, "not_before", "not a valid date-time"),
        ({"not_before": "9999-12-31T23:59:59-23:59"}, "not_before", "not a valid date-time"),
        ({"delay": 5, "not_before": "2030-01-01T12:00:00Z"}, "delay", "either"),
        ({"payloads": [{}, {"delay": -3}]}, "payloads[1].delay", "must not be negative"),
        (
            {"payloads": [{"not_before": "2031-01-01T00:00:00Z"}]},
            "payloads[0].not_before",
            "MAX_SCHEDULE_AHEAD",
        ),
    ],
)
def test_bad_schedules_name_their_field(fields: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidFieldError) as raised:
        _times(**fields)
    assert raised.value.field == field
    assert reason in raised.value.reason


def test_nanosecond_fractions_are_read_to_the_microsecond() -> None:
    assert parse_rfc3339("t", "2030-01-01T12:00:00.123456789Z") == NOW + timedelta(
        microseconds=123456
    )
