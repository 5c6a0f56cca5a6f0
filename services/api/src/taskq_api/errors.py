"""One JSON shape for every error the API returns, from one exception_handlers table.

`{"status_code", "error", "detail", "field"}`: `error` is a short machine code a
client can branch on, `detail` a sentence for a person that names the field,
`field` the path of the offending field (`payloads[0].data`) or null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap
from loguru import logger

from taskq_api.json_depth import MAX_JSON_DEPTH, TooDeeplyNestedError
from taskq_core.errors import (
    DatabaseUnavailableError,
    IdempotencyConflictError,
    InvalidFieldError,
    NotFoundError,
    RequestTooLargeError,
    TaskqError,
    TooManyTaskTypesError,
)
from taskq_core.models import PATTERN_MEANINGS

# msgspec names the failing location as `$.payloads[0].data`; Litestar sometimes
# strips it to a `key`. Both end up as the `field` of the error body.
_MSGSPEC_PATH = re.compile(r"`\$\.?([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_PATTERN = re.compile(r"Expected `str` matching regex '(.*)'$")
_BODY_TOO_LARGE = 413

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_field",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ErrorBody(msgspec.Struct, frozen=True):
    """Body of every error response."""

    status_code: int
    error: str
    detail: str
    field: str | None = None


def error_response(
    status_code: int, error: str, detail: str, field: str | None = None
) -> Response[ErrorBody]:
    """The one way an error leaves the API."""
    return Response(
        ErrorBody(status_code=status_code, error=error, detail=detail, field=field or None),
        status_code=status_code,
    )


def _invalid_field(_: Request[Any, Any, Any], error: InvalidFieldError) -> Response[ErrorBody]:
    return error_response(HTTP_400_BAD_REQUEST, "invalid_field", error.message, error.field)


def _too_large(_: Request[Any, Any, Any], error: RequestTooLargeError) -> Response[ErrorBody]:
    return error_response(
        HTTP_413_REQUEST_ENTITY_TOO_LARGE, "payload_too_large", error.message, error.field
    )


def _too_many_types(_: Request[Any, Any, Any], error: TooManyTaskTypesError) -> Response[ErrorBody]:
    return error_response(HTTP_409_CONFLICT, "too_many_task_types", error.message, error.field)


def _not_utf8(_: Request[Any, Any, Any], __: UnicodeDecodeError) -> Response[ErrorBody]:
    return error_response(
        HTTP_400_BAD_REQUEST, "malformed_json", "the request body is not valid UTF-8 (JSON must be)"
    )


def _too_deep(
    _: Request[Any, Any, Any], __: TooDeeplyNestedError | RecursionError
) -> Response[ErrorBody]:
    # RecursionError too: only input can nest deep enough to exhaust the stack.
    return error_response(
        HTTP_400_BAD_REQUEST,
        "malformed_json",
        "the request body is nested too deeply "
        f"(JSON arrays and objects go {MAX_JSON_DEPTH} levels at most)",
    )


def _idempotency_conflict(
    _: Request[Any, Any, Any], error: IdempotencyConflictError
) -> Response[ErrorBody]:
    return error_response(HTTP_409_CONFLICT, "idempotency_conflict", error.message, error.field)


def _not_found(_: Request[Any, Any, Any], error: NotFoundError) -> Response[ErrorBody]:
    return error_response(HTTP_404_NOT_FOUND, "not_found", error.message)


def _database_unavailable(
    _: Request[Any, Any, Any], error: DatabaseUnavailableError
) -> Response[ErrorBody]:
    response = error_response(HTTP_503_SERVICE_UNAVAILABLE, "database_unavailable", error.message)
    response.headers["Retry-After"] = "1"
    return response


def _taskq_error(request: Request[Any, Any, Any], error: TaskqError) -> Response[ErrorBody]:
    logger.opt(exception=error).bind(path=request.url.path).error(
        "request failed: {}", error.message
    )
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", error.message)


def _validation(_: Request[Any, Any, Any], error: ValidationException) -> Response[ErrorBody]:
    field, reason = first_problem(error.extra, str(error.detail))
    if field:
        return error_response(HTTP_400_BAD_REQUEST, "invalid_field", f"{field}: {reason}", field)
    return error_response(HTTP_400_BAD_REQUEST, "invalid_request", reason)


def first_problem(extra: object, fallback: str) -> tuple[str | None, str]:
    """The field path and reason of the first problem Litestar/msgspec reported."""
    problems = extra if isinstance(extra, list) else []
    for problem in problems:
        if not isinstance(problem, Mapping):
            continue
        message = str(problem.get("message", ""))
        key = str(problem.get("key") or "")
        if message == f"'{key}'":  # Litestar's KeyError text when the body is absent
            return None, "a JSON request body is required"
        # The handler parameter `data` is the body itself: its path is the root.
        field = "" if key in ("", "data") else key.removeprefix("data.")
        if located := _MSGSPEC_PATH.search(message):
            field = located.group(1)
            message = _MSGSPEC_PATH.sub("", message).removesuffix(" - at ").strip(" -")
        if missing := _MISSING_FIELD.search(message):
            field = f"{field}.{missing.group(1)}" if field else missing.group(1)
            message = "is required"
        if (pattern := _PATTERN.search(message)) and (
            meaning := PATTERN_MEANINGS.get(pattern.group(1).replace("\\\\", "\\"))
        ):
            message = meaning
        # msgspec writes a dict value's location as `[...]`: the dict is the field.
        return field.replace("[...]", "") or None, message
    return None, fallback


def _http(_: Request[Any, Any, Any], error: HTTPException) -> Response[ErrorBody]:
    status = error.status_code
    detail = str(error.detail)
    if status == _BODY_TOO_LARGE:
        detail = "the request body is larger than the limit (MAX_BODY_SIZE); send fewer payloads"
    elif detail.startswith("JSON is malformed"):
        return error_response(status, "malformed_json", detail)
    response = error_response(status, _CODES.get(status, "error"), detail)
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    logger.opt(exception=error).bind(path=request.url.path).error("unhandled error")
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RequestTooLargeError: _too_large,
    TooManyTaskTypesError: _too_many_types,
    InvalidFieldError: _invalid_field,
    IdempotencyConflictError: _idempotency_conflict,
    NotFoundError: _not_found,
    DatabaseUnavailableError: _database_unavailable,
    TaskqError: _taskq_error,
    ValidationException: _validation,
    HTTPException: _http,
    UnicodeDecodeError: _not_utf8,
    RecursionError: _too_deep,
    TooDeeplyNestedError: _too_deep,
    Exception: _unexpected,
}
"""Litestar picks the most specific class in an exception's MRO."""
