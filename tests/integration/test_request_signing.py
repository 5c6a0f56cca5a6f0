"""Signed calls through the real API, worker and a target that verifies them (issue 15)."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from taskq_core.settings import Settings
from taskq_core.signing import SignatureError, verify_signature
from tests.support.api import SQL, api_client, batch
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit

NEW = "whsec-new-0123456789abcdef0123456789"
OLD = "whsec-old-0123456789abcdef0123456789"


@pytest.fixture
def signing_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, secrets_key="test-secrets-key-" + "k" * 32)


class VerifyingTarget:
    """Answers 200 to a call signed with one of `secrets`, 401 otherwise (a real receiver)."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.verified: list[Received] = []
        self.refused: list[str] = []

    def __call__(self, request: Received) -> Reply:
        try:
            verify_signature(request.headers.get("x-taskq-signature"), request.body, self.secrets)
        except SignatureError as error:
            self.refused.append(error.message)
            return Reply(status=401)
        self.verified.append(request)
        return Reply()


def _configure(settings: Settings, secrets: list[str]) -> dict[str, object]:
    with api_client(settings) as client:
        response = client.post(
            "/task-types", json={"task_type": "signed", "signing_secrets": secrets}
        )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_calls_carry_a_signature_the_target_verifies_and_a_replay_is_refused(
    signing_settings: Settings,
) -> None:
    receiver = VerifyingTarget([NEW])
    target = Target(receiver).start()
    try:
        assert _configure(signing_settings, [NEW])["signed"] is True
        with api_client(signing_settings) as client, running_worker(signing_settings):
            task_id = submit(client, batch(3, task_type="signed", url=target.url))
            wait_until(lambda: all_final(signing_settings.postgres_dsn, task_id, 3))
    finally:
        target.stop()
    assert [row["status"] for row in statuses(signing_settings.postgres_dsn, task_id)] == [
        "success"
    ] * 3
    assert len(receiver.verified) == 3
    assert receiver.refused == []
    # The same request replayed ten minutes later is refused by the helper.
    first = receiver.verified[0]
    header = first.headers["x-taskq-signature"]
    signed_at = int(header.split(",")[0].removeprefix("t="))
    with pytest.raises(SignatureError, match="replay"):
        verify_signature(header, first.body, [NEW], now=signed_at + 600)


def test_a_rotation_signs_with_both_secrets(signing_settings: Settings) -> None:
    still_old = VerifyingTarget([OLD])
    target = Target(still_old).start()
    try:
        _configure(signing_settings, [NEW, OLD])
        with api_client(signing_settings) as client, running_worker(signing_settings):
            task_id = submit(client, batch(1, task_type="signed", url=target.url))
            wait_until(lambda: all_final(signing_settings.postgres_dsn, task_id, 1))
    finally:
        target.stop()
    assert len(still_old.verified) == 1
    assert still_old.verified[0].headers["x-taskq-signature"].count("v1=") == 2


def test_secrets_are_never_shown_nor_stored_in_clear(signing_settings: Settings) -> None:
    configured = _configure(signing_settings, [NEW, OLD])
    with api_client(signing_settings) as client:
        shown = client.get("/task-types/signed").text
        schema = client.get("/schema/openapi.json").text
    assert NEW not in str(configured)
    assert NEW not in shown
    assert '"signed":true' in shown.replace(" ", "")
    assert "signing_secrets" in schema  # documented as an input
    with psycopg.connect(signing_settings.postgres_dsn) as conn:
        dump = conn.execute(SQL["test_dump_task_types"]).fetchone()
    assert dump is not None
    assert NEW not in dump[0]
    assert OLD not in dump[0]


def test_an_empty_list_stops_signing_and_leaving_it_out_keeps_it(
    signing_settings: Settings,
) -> None:
    _configure(signing_settings, [NEW])
    with api_client(signing_settings) as client:
        kept = client.post("/task-types", json={"task_type": "signed", "max_rps": 5})
        assert kept.json()["signed"] is True
        stopped = client.post("/task-types", json={"task_type": "signed", "signing_secrets": []})
        assert stopped.json()["signed"] is False


@pytest.mark.parametrize(
    ("secrets", "field"),
    [
        (["too-short"], "signing_secrets[0]"),
        ([NEW, "x" * 31], "signing_secrets[1]"),
        ([NEW, OLD, NEW + "3"], "signing_secrets"),
        ([NEW, NEW], "signing_secrets"),
        ([NEW[:-1] + "\u0000"], "signing_secrets[0]"),
    ],
)
def test_bad_secrets_are_a_400_naming_the_field(
    signing_settings: Settings, secrets: list[str], field: str
) -> None:
    with api_client(signing_settings) as client:
        response = client.post(
            "/task-types", json={"task_type": "signed", "signing_secrets": secrets}
        )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert NEW not in response.text


def test_without_secrets_key_secrets_are_refused(settings: Settings) -> None:
    with api_client(settings) as client:
        response = client.post("/task-types", json={"task_type": "t", "signing_secrets": [NEW]})
    assert response.status_code == 400
    assert response.json()["field"] == "signing_secrets"
    assert "SECRETS_KEY" in response.json()["detail"]


def test_a_worker_that_cannot_decrypt_fails_the_call_instead_of_sending_it_unsigned(
    signing_settings: Settings, target: Target
) -> None:
    _configure(signing_settings, [NEW])
    with (
        api_client(signing_settings) as client,
        running_worker(signing_settings, secrets_key="another-key-" + "z" * 32),
    ):
        task_id = submit(client, batch(1, task_type="signed", url=target.url))
        wait_until(lambda: all_final(signing_settings.postgres_dsn, task_id, 1))
    (row,) = statuses(signing_settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert "SECRETS_KEY" in row["error"]
    assert target.count() == 0
