"""A target's rate-limit headers: every form read, garbage ignored (fail closed), never a crash."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from taskq_core.deliveries import Delivery, RetryLater, Snoozed, Succeeded
from taskq_core.rate_headers import MAX_RESET_SECONDS, Budget, parse_budget
from taskq_core.rate_shaping import rate_observations
from taskq_core.status import TaskStatus

NOW = 1_800_000_000.0


def budget_of(headers: dict[str, str]) -> Budget | None:
    return parse_budget(CaseInsensitiveDict(headers), now=lambda: NOW)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit": '"default";r=50;t=30'}, Budget(50, 30.0)),
        # Several policies: the tightest (fewest calls per second) counts.
        ({"RateLimit": '"hour";r=900;t=3000, "second";r=2;t=1'}, Budget(900, 3000.0)),
        # No t: the window of the policy of the same name.
        (
            {"RateLimit": '"day";r=10', "RateLimit-Policy": '"day";q=1000;w=86400'},
            Budget(10, 86400.0),
        ),
        ({"RateLimit": "limit=100, remaining=5, reset=2"}, Budget(5, 2.0)),
        ({"RateLimit-Remaining": "7", "RateLimit-Reset": "3"}, Budget(7, 3.0)),
        ({"ratelimit-remaining": "7, 100;w=60", "ratelimit-reset": "3"}, Budget(7, 3.0)),
        ({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "20"}, Budget(10, 20.0)),
        # A Unix time: seconds from now; one in the past is "renewed now".
        ({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": str(NOW + 20.5)}, Budget(10, 20.5)),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW - 5)}, Budget(0, 0.0)),
        # Both forms: the tighter wins.
        (
            {
                "RateLimit": '"a";r=90;t=10',
                "X-RateLimit-Remaining": "1",
                "X-RateLimit-Reset": "10",
            },
            Budget(1, 10.0),
        ),
    ],
)
def test_every_form_is_read(headers: dict[str, str], expected: Budget) -> None:
    assert budget_of(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"RateLimit": '"a";r=-5;t=3'},
        {"RateLimit": '"a";r=5;t=-3'},
        {"RateLimit": '"a";r=5.5;t=3'},
        {"RateLimit": '"a";r=;t=3'},
        {"RateLimit": '"a";t=3'},  # no remaining
        {"RateLimit": '"a";r=5'},  # no reset and no policy
        {"RateLimit": '"a";r=99999999999999999999;t=1'},
        {"RateLimit": '"a";r=5;t=99999999999'},
        {"RateLimit": '"a";r=5;t=' + str(int(MAX_RESET_SECONDS) + 1)},
        {"RateLimit": '"a";r=1e9;t=1'},
        {"RateLimit": '"a";r=0x10;t=1'},
        {"RateLimit": '"a";r=\uff15;t=1'},  # a full-width digit: int() would take it
        {"RateLimit": '"a";r=5;t=1' + ";x" * 600},  # too long
        {"RateLimit": "limit=100, remaining=-1, reset=2"},
        {"RateLimit": "limit=100, remaining=nan, reset=2"},
        {"RateLimit": "remaining=5"},
        {"RateLimit": "garbage"},
        {"RateLimit": "\x00\xff;=;=,,,"},
        {"RateLimit-Remaining": "7"},  # no reset
        {"RateLimit-Remaining": "inf", "RateLimit-Reset": "3"},
        {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "2"},
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "nan"},
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "inf"},
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "-20"},
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "1e400"},
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "9" * 30},
        {"X-RateLimit-Remaining": "1" * 5000, "X-RateLimit-Reset": "1"},
        # A Unix time a year ahead: too far to be a window.
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": str(NOW + 365 * 86400)},
    ],
)
def test_garbage_is_ignored(headers: dict[str, str]) -> None:
    assert budget_of(headers) is None


def test_nothing_left_for_longer_than_the_longest_pause_waits_only_that_long() -> None:
    """A target cannot stop a type for longer than a Retry-After could (MAX_SNOOZE_DELAY)."""
    headers = CaseInsensitiveDict({"RateLimit": '"a";r=0;t=86400'})
    assert parse_budget(headers, now=lambda: NOW, longest_pause=3600) == Budget(0, 3600.0)
    slow = CaseInsensitiveDict({"RateLimit": '"a";r=2;t=86400'})
    assert parse_budget(slow, now=lambda: NOW, longest_pause=3600) == Budget(2, 86400.0)


def test_garbage_beside_a_good_form_leaves_the_good_one() -> None:
    headers = {"RateLimit": '"a";r=-1;t=x', "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "2"}
    assert budget_of(headers) == Budget(4, 2.0)


def _delivery(task_type: str, *, adaptive: bool = False) -> Delivery:
    return Delivery(
        queue_name="q",
        message_id=1,
        task_type=task_type,
        raw="{}",
        call=None,
        attempt=0,
        status=TaskStatus.PENDING,
        adaptive=adaptive,
    )


def test_a_batch_tells_the_tightest_budget_and_the_adaptive_counts_per_type() -> None:
    paced, adaptive, plain = _delivery("paced"), _delivery("aimd", adaptive=True), _delivery("x")
    outcomes = [
        Succeeded(paced, 200, 1.0, budget=Budget(50, 10.0)),
        Succeeded(paced, 200, 1.0, budget=Budget(3, 10.0)),
        Succeeded(paced, 200, 1.0, budget=Budget(40, 10.0)),
        Succeeded(adaptive, 200, 1.0),
        Succeeded(adaptive, 200, 1.0),
        Snoozed(adaptive, "HTTP 429", 429, 1.0, 1.0),
        RetryLater(adaptive, "HTTP 503", 503, 1.0, 1.0),
        RetryLater(adaptive, "HTTP 500", 500, 1.0, 1.0),
        Succeeded(plain, 200, 1.0),  # neither paced nor adaptive: nothing to tell
    ]
    assert rate_observations(outcomes) == {
        "task_types": ["aimd", "paced"],
        "remaining": [None, 3.0],
        "resets": [None, 10.0],
        "successes": [2, 0],
        "throttled": [2, 0],
    }
    assert rate_observations([Succeeded(plain, 200, 1.0)]) is None
