"""Per-host circuit breakers without a database: the host key, which outcomes count, settings."""

from __future__ import annotations

import pytest

from taskq_core.circuits import BreakerPolicy, counts_as, host_key
from taskq_core.deliveries import Delivery, Dropped, Failed, RetryLater, Snoozed, Succeeded
from taskq_core.errors import SettingsError
from taskq_core.models import QueuedCall
from taskq_core.settings import Settings
from taskq_core.status import TaskStatus


def delivery(url: str = "http://127.0.0.1:8001/x") -> Delivery:
    call = QueuedCall(task_id="t", payload_id=0, task_type="sync", url=url, method="POST")
    return Delivery("q", 1, "sync", "{}", call, 0, TaskStatus.PENDING)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://127.0.0.1:8001/x", "127.0.0.1:8001"),
        ("http://127.0.0.1:8002/x", "127.0.0.1:8002"),  # two local targets are distinct
        ("http://API.Example.com/x?q=1", "api.example.com:80"),
        ("https://api.example.com/x", "api.example.com:443"),
        ("https://user:secret@api.example.com:8443/x", "api.example.com:8443"),
        ("http://[::1]:9000/x", "[::1]:9000"),
        ("http://host:99999/x", None),  # a port out of range names no host
        ("not a url", None),
    ],
)
def test_the_host_key_is_host_and_port(url: str, key: str | None) -> None:
    assert host_key(url) == key


@pytest.mark.parametrize(
    ("outcome", "failure"),
    [
        (Succeeded(delivery(), 200, 1.0), False),
        (RetryLater(delivery(), "HTTP 500", 500, 1.0, 1.0), True),
        (RetryLater(delivery(), "HTTP 503", 503, 1.0, 1.0), True),
        (RetryLater(delivery(), "timeout", None, 1.0, 1.0), True),
        (RetryLater(delivery(), "connection error: ConnectionError", None, 1.0, 1.0), True),
        (Failed(delivery(), "connection error: ConnectionError", None, 1.0, exhausted=True), True),
        (Failed(delivery(), "HTTP 404", 404, 1.0), False),  # the host answered
        (RetryLater(delivery(), "HTTP 408", 408, 1.0, 1.0), False),
        (RetryLater(delivery(), "HTTP 429", 429, 1.0, 1.0), None),  # pacing, not an outage
        (Snoozed(delivery(), "HTTP 429", 429, 1.0, 1.0), None),
        (Snoozed(delivery(), "open", None, 0.0, 1.0, circuit_open=True), None),  # no call
        (Failed(delivery(), "egress refused: private address", None, 0.0), None),
        (Failed(delivery(), "invalid request: header", None, 0.0), None),
        (RetryLater(delivery(), "worker error: KeyError", None, 0.0, 1.0), None),
        (Dropped(delivery()), None),
    ],
)
def test_connection_errors_timeouts_and_5xx_are_the_failures(
    outcome: Succeeded | RetryLater | Snoozed | Failed | Dropped, failure: bool | None
) -> None:
    assert counts_as(outcome) is failure


def test_breaker_settings_have_defaults_and_can_be_set() -> None:
    assert BreakerPolicy.from_settings(Settings()) == BreakerPolicy()
    policy = BreakerPolicy.from_settings(
        Settings.from_env(
            {
                "BREAKER_ENABLED": "false",
                "BREAKER_FAILURE_RATIO": "0.25",
                "BREAKER_MIN_CALLS": "5",
                "BREAKER_WINDOW": "2m",
                "BREAKER_COOLDOWN": "10s",
                "BREAKER_PROBES": "1",
            }
        )
    )
    assert policy == BreakerPolicy(False, 0.25, 5, 120.0, 10.0, 1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BREAKER_FAILURE_RATIO", "0"),
        ("BREAKER_FAILURE_RATIO", "1.5"),
        ("BREAKER_FAILURE_RATIO", "nan"),
        ("BREAKER_FAILURE_RATIO", "half"),
        ("BREAKER_MIN_CALLS", "0"),
        ("BREAKER_PROBES", "-1"),
        ("BREAKER_COOLDOWN", "0s"),
        ("BREAKER_WINDOW", "soon"),
        ("BREAKER_ENABLED", "maybe"),
    ],
)
def test_bad_breaker_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
