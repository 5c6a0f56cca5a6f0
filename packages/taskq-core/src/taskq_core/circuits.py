"""Per-host circuit breakers: the policy, the host key, and which outcomes count.

Pure values and functions (no I/O): the state itself lives in PostgreSQL
(migration 0014) so every task type, replica and process shares it; the
worker keeps a view of it (taskq_worker.circuit_view). A host is `host:port`
so two targets on one machine are distinct.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from taskq_core.deliveries import Dropped, Failed, Outcome, RetryLater, Snoozed, Succeeded
from taskq_core.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}
# The reasons taskq_worker.delivery gives calls that got no answer from the host.
_UNANSWERED = ("timeout", "connection error")


class CircuitState(StrEnum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # calls wait until the cool-down ends
    HALF_OPEN = "half_open"  # a few probe calls decide


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """BREAKER_* settings: when a host opens, for how long, and how many probes close it."""

    enabled: bool = True
    failure_ratio: float = 0.5
    min_calls: int = 20
    window: float = 60.0
    cooldown: float = 30.0
    probes: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerPolicy:
        return cls(
            enabled=settings.breaker_enabled,
            failure_ratio=settings.breaker_failure_ratio,
            min_calls=settings.breaker_min_calls,
            window=settings.breaker_window,
            cooldown=settings.breaker_cooldown,
            probes=settings.breaker_probes,
        )


def host_key(url: str) -> str | None:
    """`host:port` of a call's URL (lower case, default port filled in); None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower())
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def counts_as(outcome: Outcome) -> bool | None:
    """True: a failure of the host; False: the host answered; None: says nothing about it.

    Failures are connection errors, timeouts and 5xx. A 429 (or a 503 with
    Retry-After) is the target pacing us, handled by the snooze, not an
    outage; other 4xx are answers. No call made (a duplicate, an open
    circuit, a malformed message, a refused egress) counts for nothing.
    """
    match outcome:
        case Succeeded():
            return False
        case Snoozed() | Dropped():
            return None
        case RetryLater() | Failed():
            status = outcome.http_status
            if status is not None:
                if status == 429:
                    return None
                return status >= 500
            return outcome.error.startswith(_UNANSWERED) or None
