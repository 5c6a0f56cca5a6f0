"""When each payload of a batch may first be delivered: `delay` or `not_before` (issue 15).

Pure, no I/O: the API passes its clock in. A payload's own setting replaces the
batch's. The answer is an absolute time, kept in the status row
(`scheduled_for`) and used as the message's first visibility time, so a held
message is invisible to every worker until then.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from taskq_core.durations import parse_duration
from taskq_core.errors import InvalidFieldError
from taskq_core.models import TaskSubmit

# RFC 3339 date-time: a full date, a time, and an offset (Z or +hh:mm).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def scheduled_times(
    submit: TaskSubmit, *, now: datetime, max_ahead: float
) -> list[datetime | None]:
    """Per payload, the time it is held until (None: at once); InvalidFieldError names a field."""
    batch = _one_time("", submit.delay, submit.not_before, now=now, max_ahead=max_ahead)
    times: list[datetime | None] = []
    for index, payload in enumerate(submit.payloads):
        if payload.delay is None and payload.not_before is None:
            times.append(batch)
            continue
        where = f"payloads[{index}]."
        times.append(
            _one_time(where, payload.delay, payload.not_before, now=now, max_ahead=max_ahead)
        )
    return times


def _one_time(
    where: str,
    delay: int | str | None,
    not_before: str | None,
    *,
    now: datetime,
    max_ahead: float,
) -> datetime | None:
    if delay is not None and not_before is not None:
        raise InvalidFieldError(f"{where}delay", "give either delay or not_before, not both")
    if delay is not None:
        seconds = delay_seconds(f"{where}delay", delay)
        _check_ahead(f"{where}delay", seconds, max_ahead)
        return now + timedelta(seconds=seconds) if seconds > 0 else None
    if not_before is not None:
        at = parse_rfc3339(f"{where}not_before", not_before)
        seconds = (at - now).total_seconds()
        _check_ahead(f"{where}not_before", seconds, max_ahead)
        return at if seconds > 0 else None  # a time in the past means now
    return None


def delay_seconds(field: str, delay: int | str) -> float:
    """A delay in seconds: an int is milliseconds, a string a Go duration; never negative."""
    if isinstance(delay, str):
        if delay.strip().startswith("-"):
            raise InvalidFieldError(field, "must not be negative")
        try:
            return parse_duration(delay)
        except ValueError as error:
            raise InvalidFieldError(field, str(error)) from error
    if delay < 0:
        raise InvalidFieldError(field, "must not be negative")
    return delay / 1000


def parse_rfc3339(field: str, text: str) -> datetime:
    """An RFC 3339 date-time with its offset, as UTC; InvalidFieldError otherwise."""
    if not _RFC3339.fullmatch(text):
        raise InvalidFieldError(
            field, "must be an RFC 3339 date-time with an offset, e.g. 2030-01-02T03:04:05Z"
        )
    # Python's parser takes at most microseconds: drop extra fraction digits.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.upper().replace(" ", "T"))
    try:
        return datetime.fromisoformat(trimmed).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise InvalidFieldError(field, f"is not a valid date-time: {error}") from error


def _check_ahead(field: str, seconds: float, max_ahead: float) -> None:
    if seconds > max_ahead:
        raise InvalidFieldError(
            field,
            f"is more than {_days(max_ahead)} ahead (MAX_SCHEDULE_AHEAD); schedule it later",
        )


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:g} s"
