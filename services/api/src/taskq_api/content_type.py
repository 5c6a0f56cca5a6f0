"""Only JSON is accepted as a request body: a browser cannot send it cross-origin unasked.

A page on another origin can make a browser POST `text/plain`, form or
multipart bodies without a CORS preflight; `application/json` needs one, which
this API never grants. So refusing every other media type (415) keeps an open
API on an internal network from being driven by any web page its users visit.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

from taskq_api.json_depth import check_depth
from taskq_api.json_numbers import check_numbers

JSON = "application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def require_json(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook: 415 unless a body-carrying request says it is UTF-8 JSON.

    A JSON body is then refused (400) when it nests deeper than any Python's decoder
    can be relied on to handle alike, or holds a number no float can hold.
    """
    if request.method not in _BODY_METHODS:
        return
    media_type, options = request.content_type
    charset = options.get("charset", "utf-8").lower()
    if media_type.lower() != JSON or charset not in ("utf-8", "utf8"):
        got = media_type or "no Content-Type"
        if charset not in ("utf-8", "utf8"):
            got += f", charset {charset}"
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"the request body must be sent as Content-Type: {JSON} (got {got})",
        )
    body = await request.body()
    check_depth(body)
    check_numbers(body)
