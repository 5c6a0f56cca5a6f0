"""A number too large for a float is refused with a 400 naming the field it is in.

msgspec refuses such a number (`1e400`) while decoding, but places it only as
`$[...]` (a value in some object), which names no field. The body is read
once more here to find it, only when it holds a literal that can overflow: an
exponent of three digits or more. (Integers of any length decode as Python ints.)
"""

from __future__ import annotations

import json
import math
import re

from taskq_core.errors import InvalidFieldError

_MAY_OVERFLOW = re.compile(rb"\d[eE]\+?\d{3,}")
Json = dict[str, "Json"] | list["Json"] | str | int | float | bool | None


def check_numbers(body: bytes) -> None:
    """Raise InvalidFieldError for the first number a float cannot hold.

    Malformed JSON is left to the decoder, which names what is wrong with it.
    """
    if not _MAY_OVERFLOW.search(body):
        return
    try:
        document: Json = json.loads(body, parse_constant=_not_json)
    except ValueError:  # malformed, invalid UTF-8, more digits than int() takes
        return
    field = _first_overflow(document, "")
    if field is not None:
        raise InvalidFieldError(
            field or "body", "number out of range (larger than a 64-bit float can hold)"
        )


def _not_json(constant: str) -> None:
    """NaN and Infinity are not JSON: the decoder refuses the body as malformed."""
    raise ValueError(constant)


def _first_overflow(value: Json, path: str) -> str | None:
    """The path (`payloads[0].data`) of the first overflowing number, in document order."""
    if isinstance(value, float):
        return path if math.isinf(value) else None
    if isinstance(value, dict):
        children = ((f"{path}.{key}" if path else key, item) for key, item in value.items())
    elif isinstance(value, list):
        children = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for child_path, child in children:
        if (found := _first_overflow(child, child_path)) is not None:
            return found
    return None
