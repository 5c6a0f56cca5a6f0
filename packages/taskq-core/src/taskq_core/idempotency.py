"""Idempotency-Key of POST /tasks: which keys are valid, and what "the same body" means.

A repeat must carry the same request: the body is compared by a SHA-256 of its
canonical form (the decoded batch re-encoded with sorted keys), so whitespace
and key order do not matter but any value does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import msgspec

from taskq_core.errors import InvalidFieldError
from taskq_core.models import TaskSubmit

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
"""Characters: a UUID or a client's own composite key fits with room to spare."""
# Visible ASCII only: no spaces, controls or bytes a log or proxy could mangle.
_KEY = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A checked key, the hash of the body it came with, and how long it is kept."""

    key: str
    body_hash: bytes
    ttl_seconds: float


def check_key(key: str) -> str:
    """The key itself; InvalidFieldError naming the header when it is empty, long or odd."""
    if not key:
        raise InvalidFieldError(HEADER, "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidFieldError(HEADER, f"must be at most {MAX_KEY_LENGTH} characters")
    if not _KEY.fullmatch(key):
        raise InvalidFieldError(
            HEADER, "must contain only visible ASCII characters (no spaces or controls)"
        )
    return key


def body_hash(submit: TaskSubmit) -> bytes:
    """SHA-256 of the batch in canonical form (decoded, re-encoded with sorted keys)."""
    return hashlib.sha256(msgspec.json.encode(submit, order="sorted")).digest()


def claim_for(key: str, submit: TaskSubmit, *, ttl_seconds: float) -> IdempotencyClaim:
    """A checked claim for `key` and the batch it came with."""
    return IdempotencyClaim(
        key=check_key(key), body_hash=body_hash(submit), ttl_seconds=ttl_seconds
    )
