"""Opaque pagination cursors: a position in a listing, bound to the filters it was made for.

A cursor is base64url JSON plus a checksum. The checksum catches a cursor
that was edited or truncated (400, not a 500 or a silently wrong page); it is
not a secret: a forged cursor could only select rows its bearer may list
anyway. A cursor made for other filters, or by another cursor format version
(stale), is refused with a 400 naming the `cursor` field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

import msgspec

from taskq_core.errors import InvalidFieldError

VERSION = 1
_KEY = b"taskq-cursor"  # integrity only, see the module docstring
_FIELD = "cursor"
_MAX_LENGTH = 1024

Position = list[str | int]


class _Body(msgspec.Struct, frozen=True, array_like=True):
    version: int
    kind: str
    filters: str
    position: Position


def encode_cursor(kind: str, filters: Mapping[str, object], position: Position) -> str:
    """A cursor for the page after `position` of listing `kind` under `filters`."""
    body = msgspec.json.encode(_Body(VERSION, kind, _fingerprint(filters), position))
    payload = base64.urlsafe_b64encode(body).rstrip(b"=")
    return f"{payload.decode()}.{_checksum(payload)}"


def decode_cursor(token: str, kind: str, filters: Mapping[str, object]) -> Position:
    """The position a cursor holds; InvalidFieldError('cursor') when it is unusable here."""
    if len(token) > _MAX_LENGTH:
        raise InvalidFieldError(_FIELD, "is not a cursor this server issued")
    payload, _, checksum = token.encode("utf-8", "replace").partition(b".")
    if not hmac.compare_digest(_checksum(payload).encode(), checksum):
        raise InvalidFieldError(_FIELD, "is not a cursor this server issued (altered or truncated)")
    try:
        raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
        body = msgspec.json.decode(raw, type=_Body)
    except (binascii.Error, ValueError, msgspec.DecodeError) as error:
        raise InvalidFieldError(_FIELD, "is not a cursor this server issued") from error
    if body.version != VERSION:
        raise InvalidFieldError(_FIELD, "is stale (made by another version); list again without it")
    if body.kind != kind:
        raise InvalidFieldError(_FIELD, f"belongs to another listing, not to {kind}")
    if body.filters != _fingerprint(filters):
        raise InvalidFieldError(
            _FIELD, "was made for other filters; repeat the filters of the first page"
        )
    return body.position


def _fingerprint(filters: Mapping[str, object]) -> str:
    canonical = msgspec.json.encode({name: filters[name] for name in sorted(filters)})
    return hashlib.sha256(canonical).hexdigest()[:16]


def _checksum(payload: bytes) -> str:
    return hmac.new(_KEY, payload, hashlib.sha256).hexdigest()[:24]
