"""A request body nests at most `MAX_JSON_DEPTH` arrays and objects, on every Python.

msgspec stops at the interpreter's C recursion limit, which moved between
Python versions (3.11 refuses ~1,000 levels, 3.13 decodes 5,000), so the
limit is ours and checked before decoding. Nothing a task legitimately
carries nests this deep; a body that does is refused with a 400.
"""

from __future__ import annotations

import re
from itertools import accumulate

MAX_JSON_DEPTH = 128

# Escapes only occur inside strings and never contain a bracket or a quote once
# their two characters are gone (`\uXXXX` leaves hex digits), so dropping them
# first lets a string be matched as plain `"..."`.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_STEP = [0] * 256
for _opener in b"[{":
    _STEP[_opener] = 1
for _closer in b"]}":
    _STEP[_closer] = -1


class TooDeeplyNestedError(ValueError):
    """The body nests more than `MAX_JSON_DEPTH` levels."""


def nesting_depth(body: bytes) -> int:
    """How deep `body`'s arrays and objects nest; brackets inside strings do not count."""
    # C-speed passes shrink the body to its quotes and brackets before Python walks it.
    structure = _STRING.sub(b"", _ESCAPE.sub(b"", body).translate(None, _NOT_STRUCTURE))
    return max(accumulate(map(_STEP.__getitem__, structure)), default=0)


def check_depth(body: bytes) -> None:
    """Raise `TooDeeplyNestedError` when `body` nests deeper than allowed.

    Malformed JSON is left to the decoder, which names what is wrong with it.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return  # cannot nest deeper than it has openers: most bodies skip the scan
    if nesting_depth(body) > MAX_JSON_DEPTH:
        raise TooDeeplyNestedError(
            "the request body is nested too deeply "
            f"(JSON arrays and objects go {MAX_JSON_DEPTH} levels at most)"
        )
