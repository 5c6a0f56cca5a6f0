"""Request signing and secrets at rest (issue 15), without a network or database."""

from __future__ import annotations

import pytest

from taskq_core.errors import SettingsError
from taskq_core.secret_box import SecretBox, SecretUnreadableError
from taskq_core.settings import Settings
from taskq_core.signing import SignatureError, sign, verify_signature

NEW = "n" * 32
OLD = "o" * 32
BODY = b'{"accountId": "1"}'
T = 1_900_000_000


def test_a_signature_verifies_against_the_raw_body() -> None:
    header = sign(BODY, [NEW.encode()], timestamp=T)
    assert header.startswith(f"t={T},v1=")
    assert verify_signature(header, BODY, [NEW], now=T + 1) == T


def test_during_a_rotation_either_secret_verifies() -> None:
    header = sign(BODY, [NEW.encode(), OLD.encode()], timestamp=T)
    assert header.count("v1=") == 2
    assert verify_signature(header, BODY, [OLD], now=T) == T
    assert verify_signature(header, BODY, [NEW], now=T) == T


def test_a_replayed_old_timestamp_is_refused() -> None:
    header = sign(BODY, [NEW.encode()], timestamp=T)
    with pytest.raises(SignatureError, match="replay"):
        verify_signature(header, BODY, [NEW], now=T + 301)
    with pytest.raises(SignatureError, match="replay"):
        verify_signature(header, BODY, [NEW], now=T - 301)  # from the future, too
    assert verify_signature(header, BODY, [NEW], now=T + 600, tolerance=900) == T


@pytest.mark.parametrize(
    ("header", "body", "secrets", "reason"),
    [
        (None, BODY, [NEW], "no X-Taskq-Signature"),
        ("", BODY, [NEW], "no X-Taskq-Signature"),
        ("v1=abc", BODY, [NEW], "must carry"),
        (f"t={T}", BODY, [NEW], "must carry"),
        (f"t=-{T},v1=00", BODY, [NEW], "must carry"),
        (sign(BODY, [NEW.encode()], timestamp=T), BODY + b" ", [NEW], "no signature matches"),
        (sign(BODY, [NEW.encode()], timestamp=T), BODY, [OLD], "no signature matches"),
        (
            sign(BODY, [NEW.encode()], timestamp=T).replace(f"t={T}", f"t={T + 1}"),
            BODY,
            [NEW],
            "no signature matches",
        ),
    ],
)
def test_bad_signatures_are_refused(
    header: str | None, body: bytes, secrets: list[str], reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_signature(header, body, secrets, now=T)


def test_secrets_are_sealed_for_their_task_type_only() -> None:
    box = SecretBox("k" * 32)
    sealed = box.seal("billing", [NEW, OLD])
    assert NEW.encode() not in sealed
    assert OLD.encode() not in sealed
    assert box.open("billing", sealed) == (NEW.encode(), OLD.encode())
    with pytest.raises(SecretUnreadableError):
        box.open("other-type", sealed)
    with pytest.raises(SecretUnreadableError, match="SECRETS_KEY"):
        SecretBox("x" * 32).open("billing", sealed)
    assert "k" * 32 not in repr(box)


def test_the_secrets_key_setting() -> None:
    assert Settings().secrets_key == ""
    assert Settings.from_env({"SECRETS_KEY": "s" * 32}).secrets_key == "s" * 32
    with pytest.raises(SettingsError, match="at least 32") as raised:
        Settings.from_env({"SECRETS_KEY": "short-secret"})
    assert "short-secret" not in str(raised.value)
    assert "s" * 32 not in repr(Settings.from_env({"SECRETS_KEY": "s" * 32}))
