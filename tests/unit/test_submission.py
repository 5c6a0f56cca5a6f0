"""build_calls: api_override resolution, timeout conversion and the checks types cannot express."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from taskq_core.errors import InvalidFieldError
from taskq_core.models import QueuedCall, TaskSubmit
from taskq_core.submission import build_calls, merge_headers, timeout_to_ms

TASK_ID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")


def submit(**fields: object) -> TaskSubmit:
    body: dict[str, object] = {"url": "https://api.example.com/v1", "payloads": [{"data": 1}]}
    body.update(fields)
    return msgspec.convert(body, TaskSubmit)


def field_of(error: pytest.ExceptionInfo[InvalidFieldError]) -> str:
    return error.value.field


def test_one_call_per_payload_with_batch_defaults_resolved() -> None:
    calls = build_calls(
        submit(
            task_type="update-resource",
            item_id="abc123",
            method="PUT",
            headers={"Authorization": "Bearer token"},
            max_retries=5,
            retry_delay=250,
            timeout=1500,
            payloads=[{"data": {"accountId": "1"}}, {"data": None}],
        ),
        TASK_ID,
        max_payloads=10,
    )
    assert calls == [
        QueuedCall(
            task_id=str(TASK_ID),
            payload_id=index,
            task_type="update-resource",
            url="https://api.example.com/v1",
            method="PUT",
            headers={"Authorization": "Bearer token"},
            data=data,
            item_id="abc123",
            timeout_ms=1500,
            max_retries=5,
            retry_delay_ms=250,
        )
        for index, data in enumerate([{"accountId": "1"}, None])
    ]


def test_api_override_replaces_url_and_method_and_merges_headers() -> None:
    calls = build_calls(
        submit(
            headers={"Authorization": "Bearer token", "X-Team": "a"},
            payloads=[
                {
                    "data": 1,
                    "api_override": {
                        "url": "http://override.example.com/p",
                        "method": "PATCH",
                        "headers": {"authorization": "Bearer different-token", "X-Extra": "1"},
                    },
                },
                {"data": 2},
            ],
        ),
        TASK_ID,
        max_payloads=10,
    )
    first, second = calls
    assert (first.url, first.method) == ("http://override.example.com/p", "PATCH")
    assert first.headers == {
        "X-Team": "a",
        "authorization": "Bearer different-token",
        "X-Extra": "1",
    }
    assert (second.url, second.method) == ("https://api.example.com/v1", "POST")
    assert second.headers == {"Authorization": "Bearer token", "X-Team": "a"}


def test_override_with_only_headers_keeps_batch_url() -> None:
    (call,) = build_calls(
        submit(payloads=[{"api_override": {"headers": {"A": "b"}}}]), TASK_ID, max_payloads=1
    )
    assert call.url == "https://api.example.com/v1"
    assert call.headers == {"A": "b"}


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [(None, None), (1, 1), (5000, 5000), ("1500ms", 1500), ("2s", 2000), ("1m", 60000)],
)
def test_timeout_is_milliseconds_or_a_go_duration(
    timeout: int | str | None, expected: int | None
) -> None:
    assert timeout_to_ms(timeout) == expected


@pytest.mark.parametrize("timeout", ["soon", "0s", "11m", "-1s", ""])
def test_bad_timeout_names_the_field(timeout: str) -> None:
    with pytest.raises(InvalidFieldError) as error:
        timeout_to_ms(timeout)
    assert field_of(error) == "timeout"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com",
        "example.com/path",
        "http://",
        "https:///path",
        "mailto:a@b.c",
        "http://exa mple.com",
        "http://example.com:99999/",
        "javascript:alert(1)",
    ],
)
def test_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(InvalidFieldError) as error:
        build_calls(submit(url=url), TASK_ID, max_payloads=1)
    assert field_of(error) == "url"


def test_bad_override_url_names_the_payload() -> None:
    body = submit(payloads=[{"data": 1}, {"api_override": {"url": "file:///etc/passwd"}}])
    with pytest.raises(InvalidFieldError) as error:
        build_calls(body, TASK_ID, max_payloads=5)
    assert field_of(error) == "payloads[1].api_override.url"


def test_payload_count_is_between_one_and_the_cap() -> None:
    with pytest.raises(InvalidFieldError) as empty:
        build_calls(submit(payloads=[]), TASK_ID, max_payloads=3)
    with pytest.raises(InvalidFieldError) as too_many:
        build_calls(submit(payloads=[{}] * 4), TASK_ID, max_payloads=3)
    assert field_of(empty) == field_of(too_many) == "payloads"
    assert "at most 3" in str(too_many.value)
    assert len(build_calls(submit(payloads=[{}] * 3), TASK_ID, max_payloads=3)) == 3


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Bad Name": "x"}, "headers"),
        ({"": "x"}, "headers"),
        ({"X-Ok": "line\r\nInjected: 1"}, "headers.X-Ok"),
        ({"X-Ok": "nul\x00"}, "headers.X-Ok"),
    ],
)
def test_header_names_and_values_are_sane(headers: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidFieldError) as error:
        build_calls(submit(headers=headers), TASK_ID, max_payloads=1)
    assert field_of(error) == field


def test_bad_override_header_names_the_payload() -> None:
    body = submit(payloads=[{"api_override": {"headers": {"X": "a\nb"}}}])
    with pytest.raises(InvalidFieldError) as error:
        build_calls(body, TASK_ID, max_payloads=1)
    assert field_of(error) == "payloads[0].api_override.headers.X"


def test_merge_headers_is_case_insensitive_and_does_not_mutate() -> None:
    base = {"Content-Type": "application/json", "X-A": "1"}
    assert merge_headers(base, {"content-type": "text/plain"}) == {
        "X-A": "1",
        "content-type": "text/plain",
    }
    assert base == {"Content-Type": "application/json", "X-A": "1"}
