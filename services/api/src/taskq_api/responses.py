"""The error responses each operation declares in OpenAPI, all with the one error body.

Declared so the spec tells clients (and the schemathesis tests) every status
the API really answers; a response the spec does not list is a bug.
"""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from taskq_api.errors import ErrorBody

_MEANINGS = {
    400: "A field is invalid; `field` names it",
    401: "No valid API key (only when the server sets API_KEYS)",
    404: "Not found",
    409: "A new task type would exceed MAX_TASK_TYPES, or the Idempotency-Key was already "
    "used with a different body",
    413: "The request body is larger than MAX_BODY_SIZE, or would store more than "
    "MAX_REQUEST_STORAGE",
    415: "The body is not sent as Content-Type: application/json",
    503: "The database is unreachable; retry after the Retry-After seconds",
}


def error_responses(*status_codes: int) -> dict[int, ResponseSpec]:
    """`responses=` for a route handler: each code with the error body."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=_MEANINGS[code], generate_examples=False
        )
        for code in status_codes
    }


def write_errors(*extra: int) -> dict[int, ResponseSpec]:
    """A handler that reads a JSON body and writes to the database."""
    return error_responses(400, 401, 413, 415, 503, *extra)


def read_errors() -> dict[int, ResponseSpec]:
    """A handler that reads one resource by its path."""
    return error_responses(400, 401, 404, 503)
