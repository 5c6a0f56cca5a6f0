from __future__ import annotations

import socket

import pytest

from taskq_core.queries import QUERIES, parse_named_blocks
from taskq_core.queue_names import queue_name_for
from taskq_core.redaction import REDACTED, is_sensitive_header, redact_headers
from taskq_dev.queries import DEV_QUERIES


def test_queue_names_are_stable_unique_and_short() -> None:
    names = {queue_name_for(task_type) for task_type in ["a", "A", "a b", "a_b", "x" * 500, "ü"]}
    assert len(names) == 6
    assert all(len(name) <= 47 and name.startswith("tq_") for name in names)
    assert all(name.replace("_", "").isalnum() and name == name.lower() for name in names)
    assert queue_name_for("update-resource") == queue_name_for("update-resource")


def test_named_blocks_parse_and_reject_duplicates() -> None:
    blocks = parse_named_blocks("-- name: one\nSELECT 1;\n\n-- name: two\n-- why\nSELECT 2;\n")
    assert blocks == {"one": "SELECT 1;", "two": "-- why\nSELECT 2;"}
    with pytest.raises(ValueError, match="duplicate"):
        parse_named_blocks("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n")


def test_every_query_is_loaded() -> None:
    for name in [
        "enqueue_task",
        "read_messages",
        "mark_outcomes",
        "take_tokens",
        "take_dead_letters",
    ]:
        assert QUERIES[name].strip()


def test_development_sql_stays_out_of_the_core() -> None:
    """The runtime package carries only what the services run (issue 12)."""
    assert not DEV_QUERIES.keys() & QUERIES.keys()
    assert not [name for name in QUERIES if name.startswith(("bench_", "test_", "localpg_"))]
    assert {"bench_send_batch", "test_statuses", "localpg_create_database"} <= DEV_QUERIES.keys()


def test_sensitive_headers_are_redacted() -> None:
    headers = {
        "Authorization": "Bearer x",
        "X-Api-Key": "k",
        "Cookie": "c",
        "X-Auth-Token": "t",
        "Content-Type": "application/json",
        "X-Trace": "1",
    }
    redacted = redact_headers(headers)
    assert redacted == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "Cookie": REDACTED,
        "X-Auth-Token": REDACTED,
        "Content-Type": "application/json",
        "X-Trace": "1",
    }
    assert is_sensitive_header("x-client-secret")
    assert not is_sensitive_header("accept")


def test_tests_cannot_connect_off_the_machine() -> None:
    with socket.socket() as sock, pytest.raises(OSError, match="only to loopback"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: would never answer anyway
    with socket.socket(socket.AF_INET6) as sock, pytest.raises(OSError, match="only to loopback"):
        sock.connect(("::ffff:192.0.2.1", 80, 0, 0))
