"""Request signing (issue 15): `X-Taskq-Signature: t=<unix>,v1=<hex>` as Stripe and Svix do.

v1 is HMAC-SHA256, keyed with a task type's signing secret, over
`"<t>.<raw body>"`. During a rotation a type has two secrets and each call
carries one v1 per secret, so a target that knows either accepts it.
`verify_signature` is the target side: a small helper for Python receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from taskq_core.errors import TaskqError

SIGNATURE_HEADER = "X-Taskq-Signature"
MIN_SECRET_LENGTH = 32
"""Characters: 32 random characters carry well over the 128 bits an HMAC key needs."""
MAX_SECRET_LENGTH = 256
MAX_SECRETS = 2
"""The current secret and, while a rotation is under way, the previous one."""
DEFAULT_TOLERANCE = 300.0
"""Seconds a signature stays acceptable: older timestamps are refused as replays."""


class SignatureError(TaskqError):
    """The request's signature is missing, malformed, stale or wrong."""


def sign(body: bytes, secrets: Sequence[bytes], *, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp`: one v1 per secret."""
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={_digest(secret, timestamp, body)}" for secret in secrets)
    return ",".join(parts)


def verify_signature(
    header: str | None,
    body: bytes,
    secrets: Sequence[str | bytes],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a received X-Taskq-Signature against the raw body; its timestamp, or SignatureError.

    Accepts when any v1 matches any of `secrets` (both secrets of a rotation),
    and the timestamp is within `tolerance` seconds of `now` (replays refused).
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} must carry t=<unix time> and v1=<signature>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"the signature's timestamp is more than {tolerance:g} s away from now (a replay?)"
        )
    for secret in secrets:
        key = secret.encode() if isinstance(secret, str) else secret
        expected = _digest(key, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return timestamp
    raise SignatureError("no signature matches any of the secrets")


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()
