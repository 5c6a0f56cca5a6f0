"""Secrets carried by real exceptions stay out of the log, in both formats, tracebacks included.

Each case first checks that the unredacted traceback does hold the secret
(so the test fails if redaction stops working, not only if the driver changes
its wording), then that the log written through `configure_logging` does not.
The exceptions are real: an HTTP call and PostgreSQL connections to closed
ports on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import traceback

import pytest
import requests
from loguru import logger

from taskq_core.database import connect
from taskq_core.errors import TaskqError
from taskq_core.logs import configure_logging
from taskq_core.redaction import REDACTED, Redactor
from taskq_core.settings import Settings
from tests.support.processes import free_port

URL_PASSWORD = "planted-url-password"
QUERY_TOKEN = "planted-query-token"
BEARER = "planted-bearer-token"
DSN_PASSWORD = "planted%zz-dsn-password"  # a bad %-escape: libpq quotes it in its error
KEYWORD_DSN_PASSWORD = "planted-keyword-dsn-password"
SECRETS_KEY = "planted-secrets-key-0123456789abcdef"
API_KEY = "planted-api-key-0123456789"


def formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def log_both_ways(error: BaseException, what: str) -> None:
    """Log `error` as taskq's code does and as a library does (standard logging)."""
    try:
        raise error
    except BaseException:
        logger.exception("{} failed: {}", what, error)
        logging.getLogger("some.library").exception("%s failed (library): %s", what, error)


def post_with_credentials(url: str, headers: dict[str, str]) -> None:
    """A careless caller: quotes the URL and the headers when wrapping the client's error."""
    try:
        requests.post(url, headers=headers, timeout=5)
    except requests.RequestException as error:
        raise RuntimeError(f"POST {url} with {headers!r} failed") from error


def logged(log_format: str, settings: Settings, errors: list[tuple[BaseException, str]]) -> str:
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    for error, what in errors:
        log_both_ways(error, what)
    output = stream.getvalue()
    if log_format == "json":
        lines = [json.loads(line) for line in output.splitlines()]
        assert len(lines) == 2 * len(errors)
        assert all("Traceback" in line["traceback"] for line in lines)
    else:
        assert output.count("Traceback") >= 2 * len(errors)  # chained errors print more
    return output


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.usefixtures("restore_logging")
def test_an_http_error_keeps_url_password_query_token_and_header_out(log_format: str) -> None:
    url = f"http://user:{URL_PASSWORD}@127.0.0.1:{free_port()}/hook?api_key={QUERY_TOKEN}&n=1"
    try:
        post_with_credentials(url, {"Authorization": f"Bearer {BEARER}", "X-Plain": "plain"})
    except RuntimeError as caught:
        error = caught
    raw = formatted(error)
    assert isinstance(error.__cause__, requests.ConnectionError)
    # requests itself quotes the query string; the wrapper adds the rest.
    assert QUERY_TOKEN in str(error.__cause__)
    assert all(secret in raw for secret in (URL_PASSWORD, QUERY_TOKEN, BEARER))
    output = logged(log_format, Settings(log_format=log_format), [(error, "the call")])
    for secret in (URL_PASSWORD, QUERY_TOKEN, BEARER):
        assert secret not in output
    assert "127.0.0.1" in output  # still says where the call went
    assert "n=1" in output  # and keeps what is not a credential
    assert REDACTED in output


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.usefixtures("restore_logging")
def test_a_database_error_keeps_dsn_password_and_keys_out(log_format: str) -> None:
    closed = free_port()
    settings = Settings(
        log_format=log_format,
        postgres_dsn=f"postgresql://taskq:{DSN_PASSWORD}@127.0.0.1:{closed}/taskq",
        secrets_key=SECRETS_KEY,
        api_keys=(API_KEY,),
    )
    errors: list[tuple[BaseException, str]] = []
    # libpq refuses the password's bad escape and quotes it in the error.
    with pytest.raises(TaskqError) as malformed:
        connect(settings, name="taskq-test")
    errors.append((malformed.value, "connecting"))
    # A keyword DSN with a password to a closed port, quoted by a careless wrapper.
    keyword_dsn = f"host=127.0.0.1 port={closed} user=taskq password={KEYWORD_DSN_PASSWORD}"
    keyword = Settings(postgres_dsn=keyword_dsn, db_connect_timeout=2)
    try:
        try:
            connect(keyword, name="taskq-test")
        except TaskqError as error:
            raise RuntimeError(f"cannot reach {keyword_dsn}") from error
    except RuntimeError as caught:
        errors.append((caught, "reconnecting"))
    # A library that quotes the key it was given.
    try:
        raise ValueError(f"cannot use key {SECRETS_KEY!r} nor {API_KEY}")
    except ValueError as caught:
        errors.append((caught, "sealing"))
    raw = "".join(formatted(error) for error, _ in errors)
    secrets = ("planted%zz", "planted-keyword-dsn-password", SECRETS_KEY, API_KEY)
    assert all(secret in raw for secret in secrets)
    output = logged(log_format, settings, errors)
    for secret in (*secrets, "planted"):
        assert secret not in output
    assert "Connection refused" in output  # the cause is still readable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:pw-long-enough@h:5432/db", "postgresql://u:[redacted]@h:5432/db"),
        ("host=h password='a b c' user=u", "host=h password=[redacted] user=u"),
        ("url: /x?token=t0k&page=2", "url: /x?token=[redacted]&page=2"),
        ("{'X-Api-Key': 'v', 'X-Plain': 'p'}", "{'X-Api-Key': '[redacted]', 'X-Plain': 'p'}"),
        ('{"signing_secret": "s\\"x"}', '{"signing_secret": "[redacted]"}'),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [redacted]"),
        ("sent Bearer abc.def-123 along", "sent Bearer [redacted] along"),
        ("no secret: 12 tasks, key count 3", "no secret: 12 tasks, key count 3"),
    ],
)
def test_redactor_shapes(text: str, shown: str) -> None:
    assert Redactor().text(text) == shown


def test_redactor_known_values() -> None:
    redactor = Redactor.of("pass%20word-1", "short", None)
    assert redactor.text("a pass%20word-1 b pass word-1 c short") == (
        f"a {REDACTED} b {REDACTED} c short"
    )


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.usefixtures("restore_logging")
def test_an_error_nothing_caught_in_a_thread_is_logged_redacted(log_format: str) -> None:
    url = f"http://user:{URL_PASSWORD}@127.0.0.1:{free_port()}/hook"
    stream = io.StringIO()
    configure_logging(Settings(log_format=log_format), stream=stream)

    def call() -> None:
        post_with_credentials(url, {})

    thread = threading.Thread(target=call, name="careless")
    thread.start()
    thread.join(timeout=30)
    output = stream.getvalue()
    assert "uncaught error in thread careless" in output
    assert "Traceback" in output
    assert URL_PASSWORD not in output
