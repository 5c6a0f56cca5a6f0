"""One HTTP call and what it means: the per-message logic, free of threads and queues.

`deliver` takes a message and returns an outcome; the supervisor decides where
the outcome goes. Tests call it directly against a real HTTP server.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import requests
from requests.cookies import RequestsCookieJar
from requests.utils import check_header_validity, get_auth_from_url
from urllib3.exceptions import NameResolutionError

from taskq_core.call_limits import call_timeout, longest_call
from taskq_core.capture import CapturedResponse, capture
from taskq_core.deliveries import Delivery, Dropped, Failed, Outcome, outcome_for
from taskq_core.models import DeliveryDefaults, QueuedCall
from taskq_core.rate_headers import Budget, parse_budget
from taskq_core.retry import (
    RETRY_AFTER_STATUS_CODES,
    ErrorKind,
    Happened,
    RetryPolicy,
    parse_retry_after,
)
from taskq_core.settings import Settings
from taskq_core.signing import SIGNATURE_HEADER, sign
from taskq_core.status import TaskStatus
from taskq_core.submission import merge_headers
from taskq_worker.curl_transport import UnsendableHeaderError
from taskq_worker.guarded_http import EgressRefusedError
from taskq_worker.redirects import DEFAULT_HEADERS

_BODYLESS_METHODS = frozenset({"GET", "DELETE"})
MAX_RESPONSE_BYTES = 1024 * 1024  # bounds what is read; only the first capture_bytes are kept
_CHUNK_BYTES = 64 * 1024
# Errors in the request itself: sending it again cannot succeed.
_PERMANENT_REQUEST_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)
_encode = msgspec.json.Encoder().encode
_UNSIGNABLE = (
    "signing secrets unreadable: this worker's SECRETS_KEY is unset or differs from the API's"
)


class NoCookies(RequestsCookieJar):
    """A cookie jar that keeps nothing and sends nothing.

    Every call shares one session, whose jar requests fills from every answer
    and adds to every redirect hop: a cookie one task's target set would ride
    along on another task's calls. Skipping the jar's work also saves a few
    percent of each call's CPU.
    """

    def set_cookie(self, *args: object, **kwargs: object) -> None:
        pass

    def extract_cookies(self, *args: object, **kwargs: object) -> None:
        pass

    def add_cookie_header(self, *args: object, **kwargs: object) -> None:
        pass


@dataclass(frozen=True, slots=True)
class CallDefaults:
    """What applies when a batch did not say: the reference's TIMEOUT, MAX_RETRIES and backoff."""

    timeout: float
    max_retries: int
    retry_base_delay: float
    retry_max_delay: float
    follow_redirects: bool = True
    capture_bytes: int = 0  # RESPONSE_CAPTURE_BYTES: reply bytes kept in the status row
    max_snoozes: int = 20
    max_snooze_delay: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CallDefaults:
        return cls(
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            retry_base_delay=settings.retry_base_delay,
            retry_max_delay=settings.retry_max_delay,
            follow_redirects=settings.follow_redirects,
            capture_bytes=settings.response_capture_bytes,
            max_snoozes=settings.max_snoozes,
            max_snooze_delay=settings.max_snooze_delay,
        )

    def policy_for(self, call: QueuedCall, type_defaults: DeliveryDefaults) -> RetryPolicy:
        """The retry policy of one call: the batch's own values, then its type's, then these."""
        max_retries = call.max_retries
        if max_retries is None:
            max_retries = type_defaults.max_retries
        base_ms = call.retry_delay_ms
        if base_ms is None:
            base_ms = type_defaults.retry_delay_ms
        max_ms = type_defaults.retry_max_delay_ms
        statuses = type_defaults.retryable_status_codes
        return RetryPolicy(
            max_retries=self.max_retries if max_retries is None else max_retries,
            base_delay=self.retry_base_delay if base_ms is None else base_ms / 1000.0,
            max_delay=self.retry_max_delay if max_ms is None else max_ms / 1000.0,
            max_snoozes=self.max_snoozes,
            max_snooze_delay=self.max_snooze_delay,
            retryable_statuses=None if statuses is None else frozenset(statuses),
        )


def deliver(
    delivery: Delivery,
    session: requests.Session,
    defaults: CallDefaults,
    rng: random.Random,
) -> Outcome:
    """Make the call `delivery` describes and classify the result."""
    call = delivery.call
    if delivery.status is not TaskStatus.PENDING:
        return Dropped(delivery)
    if call is None or delivery.signing_keys is None:
        # Fail closed: a type that signs its calls never sends one unsigned.
        reason = "malformed message: not a taskq call" if call is None else _UNSIGNABLE
        return Failed(delivery, reason, None, 0.0)
    policy = defaults.policy_for(call, delivery.type_defaults)
    # No Accept-Encoding among the defaults: at most a short preview of a reply is
    # kept. Then the type's default headers, then the call's own (names compare
    # without case).
    headers = merge_headers(
        {**DEFAULT_HEADERS, **(delivery.type_defaults.headers or {})}, call.headers
    )
    # A callback's key differs from its message's: a target may receive both.
    suffix = "" if call.callback_of is None else ":callback"
    headers["Idempotency-Key"] = f"{call.task_id}:{call.payload_id}{suffix}"
    headers["X-Taskq-Task-Id"] = call.task_id
    headers["X-Taskq-Attempt"] = str(delivery.attempt + 1)
    body: bytes | None = None
    if call.data is not None or call.method not in _BODYLESS_METHODS:
        body = _encode(call.data)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    if delivery.signing_keys:
        headers[SIGNATURE_HEADER] = sign(
            body or b"", delivery.signing_keys, timestamp=int(time.time())
        )
    timeout = call_timeout(call, defaults.timeout, delivery.type_defaults)

    kept: CapturedResponse | None = None
    budget: Budget | None = None
    started = time.perf_counter()
    try:
        # Preparing the request here and sending it skips the session's merge of
        # its own settings into every request (cookies, hooks, environment):
        # about a tenth of each call's CPU, and taskq sets none of them.
        request = _prepared_for(call.method, call.url).copy()
        request.prepare_headers(headers)
        request.prepare_cookies(session.cookies)  # none are sent; redirects need the jar
        request.prepare_body(body, None)
        credentials = _credentials_in(call.url)
        if credentials != ("", ""):
            request.prepare_auth(credentials)
        response = session.send(
            request,
            timeout=timeout,
            allow_redirects=defaults.follow_redirects,
            stream=True,
        )
        kept = _read_body(
            response, deadline=started + longest_call(timeout), keep=defaults.capture_bytes
        )
    except EgressRefusedError as error:
        happened, reason = Happened(error=ErrorKind.EGRESS_REFUSED), f"egress refused: {error}"
    except _PERMANENT_REQUEST_ERRORS as error:
        reason = f"invalid request: {_describe_invalid(error, headers)}"
        happened = Happened(error=ErrorKind.INVALID_REQUEST)
    except requests.exceptions.RequestException as error:
        happened, reason = Happened(error=_kind(error)), _describe(error)
    else:
        happened, reason = _answer(response), f"HTTP {response.status_code}"
        budget = parse_budget(
            response.headers, now=time.time, longest_pause=defaults.max_snooze_delay
        )
    return outcome_for(
        delivery,
        policy,
        happened,
        reason=reason,
        duration_ms=_elapsed_ms(started),
        rng=rng,
        response=kept,
        budget=budget,
    )


@functools.lru_cache(maxsize=1024)
def _prepared_for(method: str, url: str) -> requests.PreparedRequest:
    """A request's method and URL, checked and encoded once per distinct pair.

    The calls of a task type mostly share one URL; parsing and re-quoting it
    for every call was ~5% of a worker's CPU against a fast target (py-spy,
    docs/benchmarks.md). Bad URLs raise here, every time (errors are not cached).
    """
    template = requests.PreparedRequest()
    template.prepare_method(method)
    template.prepare_url(url, None)
    template.prepare_hooks(None)
    return template


@functools.lru_cache(maxsize=1024)
def _credentials_in(url: str) -> tuple[str, str]:
    """user:password written in the URL, sent as Basic auth as requests does (empty: none)."""
    return get_auth_from_url(url)


def _read_body(
    response: requests.Response, *, deadline: float, keep: int
) -> CapturedResponse | None:
    """Read the reply so the connection can be reused, within a size and time budget.

    The first `keep` bytes are kept (response capture). A hostile target can
    answer with an endless or dripping body; past the budget the connection
    is closed instead of reused.
    """
    received = 0
    prefix = b""
    try:
        for chunk in response.iter_content(_CHUNK_BYTES):
            if keep and len(prefix) <= keep:  # one byte more than kept tells it was cut
                prefix += chunk[: keep + 1 - len(prefix)]
            received += len(chunk)
            if received > MAX_RESPONSE_BYTES or time.perf_counter() > deadline:
                break
    finally:
        response.close()
    if keep <= 0:
        return None
    return capture(
        prefix[:keep],
        truncated=len(prefix) > keep,
        content_type=response.headers.get("Content-Type"),
    )


def _answer(response: requests.Response) -> Happened:
    status = response.status_code
    retry_after = None
    if status in RETRY_AFTER_STATUS_CODES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=datetime.now(UTC))
    return Happened(http_status=status, retry_after=retry_after)


def _kind(error: requests.exceptions.RequestException) -> ErrorKind:
    if isinstance(error, requests.exceptions.Timeout):
        return ErrorKind.TIMEOUT
    if isinstance(error, requests.exceptions.ConnectionError):
        return ErrorKind.CONNECTION
    return ErrorKind.TRANSPORT


def _describe(error: requests.exceptions.RequestException) -> str:
    """A short, secret-free reason: the exception's kind, never its message (it holds the URL)."""
    if isinstance(error, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(error, requests.exceptions.ConnectionError):
        cause = error.args[0] if error.args else None
        if isinstance(getattr(cause, "reason", None), NameResolutionError):
            return "connection error: the host name did not resolve"
        return f"connection error: {type(error).__name__}"
    return f"request error: {type(error).__name__}"


def _describe_invalid(error: requests.exceptions.RequestException, headers: dict[str, str]) -> str:
    """Which part of the request the HTTP client refused, never its value.

    requests puts the refused header value or the whole URL (password
    included) in its messages, so the text is built here instead.
    """
    if isinstance(error, requests.exceptions.InvalidHeader):
        refused = (
            error.header_name
            if isinstance(error, UnsendableHeaderError)  # libcurl's refusal names it
            else _refused_by_requests(headers)
        )
        if refused is None:
            return "a header the HTTP client refuses"
        return f"header {refused!r} has a value the HTTP client refuses"
    return f"{type(error).__name__} (the URL is not one the HTTP client accepts)"


def _refused_by_requests(headers: dict[str, str]) -> str | None:
    """The first header requests' own check refuses, by name."""
    for name, value in headers.items():
        try:
            check_header_validity((name, value))
        except requests.exceptions.InvalidHeader:
            return name
    return None


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
