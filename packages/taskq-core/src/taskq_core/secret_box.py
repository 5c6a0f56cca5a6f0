"""Signing secrets at rest: AES-256-GCM under SECRETS_KEY, so a database dump alone reveals none.

The key is derived from the setting with SHA-256 (any string of at least 32
characters works); the task type is authenticated with each ciphertext, so a
row copied onto another type does not decrypt.
"""

from __future__ import annotations

import hashlib
import os

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from taskq_core.errors import TaskqError

_NONCE_BYTES = 12
_CONTEXT = b"taskq signing secrets v1\x00"


class SecretUnreadableError(TaskqError):
    """A stored signing secret does not decrypt with this SECRETS_KEY."""


class SecretBox:
    """Seals and opens a task type's list of signing secrets."""

    def __init__(self, key: str) -> None:
        self._aead = AESGCM(hashlib.sha256(_CONTEXT + key.encode()).digest())

    def __repr__(self) -> str:
        return "SecretBox(...)"  # never the key

    def seal(self, task_type: str, secrets: list[str]) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plain = msgspec.json.encode(secrets)
        return nonce + self._aead.encrypt(nonce, plain, task_type.encode())

    def open(self, task_type: str, sealed: bytes) -> tuple[bytes, ...]:
        """The secrets as bytes (HMAC keys); SecretUnreadableError when the key differs."""
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, ciphertext, task_type.encode())
        except InvalidTag as error:
            raise SecretUnreadableError(
                f"the signing secrets of task type {task_type!r} do not decrypt with this "
                "SECRETS_KEY (set the same SECRETS_KEY on every API and worker)"
            ) from error
        return tuple(secret.encode() for secret in msgspec.json.decode(plain, type=list[str]))
