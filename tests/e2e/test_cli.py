"""`taskq` as a user runs it: a subprocess against a real API process (and a real worker)."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from taskq_core.circuits import BreakerPolicy
from taskq_core.database import create_pool
from taskq_core.repository.circuits import CircuitRepository, HostTally
from taskq_core.settings import Settings
from tests.support.api import counts, dlq_length, fail_everything, queue_length
from tests.support.api_process import running_api
from tests.support.databases import DLQ
from tests.support.processes import BIN, settings_environment
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import running_worker

TERMINAL_CONTROL = re.compile(r"\x1b|\r")
KEY = "cli-test-key-0123456789abcdef"


def taskq(
    base_url: str, *args: str, stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed `taskq` with pipes for stdin, stdout and stderr (no terminal)."""
    environment = {name: value for name, value in os.environ.items() if name != "TASKQ_API_KEY"}
    environment.update(TASKQ_URL=base_url, COLUMNS="200", **env)
    result = subprocess.run(
        [str(BIN / "taskq"), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    with running_api(settings, tmp_path / "api.log") as (base_url, _):
        yield base_url


def write_ndjson(path: Path, count: int) -> Path:
    with path.open("w") as output:
        for number in range(count):
            output.write(json.dumps({"n": number, "name": f"record-{number}"}) + "\n")
    return path


@pytest.mark.slow
def test_fifty_thousand_ndjson_payloads_stream_in_batches_through_a_pipe(
    api: str, db_dsn: str, tmp_path: Path
) -> None:
    source = write_ndjson(tmp_path / "records.ndjson", 50_000)
    result = taskq(
        api, "submit", str(source), "--url", "http://127.0.0.1:9/sink", "--task-type", "bulk",
        "--batch-size", "5000", "--max-retries", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    task_ids = result.stdout.split()
    assert len(task_ids) == 10
    assert all(UUID(task_id) for task_id in task_ids)
    # Pipes get results and one summary line: no progress bar redraws, no colours.
    assert not TERMINAL_CONTROL.search(result.stdout + result.stderr), repr(result.stderr)
    assert result.stderr.strip() == "submitted 50000 payload(s) in 10 task(s)"
    assert counts(db_dsn)[0] == 50_000

    summary = taskq(api, "status", task_ids[-1], "--json")
    assert summary.returncode == 0, summary.stderr
    statuses = json.loads(summary.stdout)["statuses"]
    assert [entry["payload"] for entry in statuses[:2]] == [
        {"n": 45_000, "name": "record-45000"},
        {"n": 45_001, "name": "record-45001"},
    ]
    table = taskq(api, "status", task_ids[0])
    assert "5000 message(s)" in table.stdout
    assert re.search(r"pending\s*│\s*5000", table.stdout), table.stdout


def test_stdin_and_json_batches(api: str, tmp_path: Path) -> None:
    lines = b"".join(json.dumps({"i": i}).encode() + b"\n\n" for i in range(7))
    piped = taskq(
        api, "submit", "-", "--url", "http://127.0.0.1:9/x", "--batch-size", "3", "--json",
        stdin=lines,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    replies = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [len(reply["message_ids"]) for reply in replies] == [3, 3, 1]
    assert [reply["lines"] for reply in replies] == [[1, 5], [6, 11], [12, 14]]

    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {"url": "http://127.0.0.1:9/x", "item_id": "abc", "payloads": [{"data": 1}]},
            indent=2,
        )
    )
    single = taskq(api, "submit", str(batch), "--task-type", "from-flag")
    assert single.returncode == 0, single.stderr
    shown = json.loads(taskq(api, "status", single.stdout.strip(), "--json").stdout)
    assert [(s["item_id"], s["task_type"]) for s in shown["statuses"]] == [("abc", "from-flag")]


def test_a_terminal_gets_a_progress_bar(api: str, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "records.ndjson", 2_000)
    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            [str(BIN / "taskq"), "submit", str(source), "--url", "http://127.0.0.1:9/x"],
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TASKQ_URL": api, "TERM": "xterm"},
            timeout=60,
            check=False,
        )
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert len(process.stdout.split()) == 2  # the results still go to stdout alone
    assert b"submitting" in drawn
    assert b"2000 payloads in 2 tasks" in drawn


def test_watch_follows_a_task_and_fails_when_a_message_failed(
    settings: Settings, api: str, tmp_path: Path
) -> None:
    target = Target(lambda request: Reply(400 if b'"bad"' in request.body else 200)).start()
    try:
        with running_worker(settings):
            good = taskq(
                api, "submit", "-", "--url", target.url, "--task-type", "watch",
                stdin=b'{"ok": 1}\n{"ok": 2}\n',
            )  # fmt: skip
            watched = taskq(api, "status", good.stdout.strip(), "--watch", "--interval", "0.2")
            assert watched.returncode == 0, watched.stderr
            assert watched.stdout.count("success") == 2

            mixed = taskq(
                api, "submit", "-", "--url", target.url, "--task-type", "watch",
                "--max-retries", "0", stdin=b'{"ok": 3}\n"bad"\n',
            )  # fmt: skip
            failed = taskq(
                api, "status", mixed.stdout.strip(), "--watch", "--interval", "0.2", "--summary"
            )
            assert failed.returncode == 1
            assert re.search(r"failed\s*│\s*1", failed.stdout), failed.stdout
            assert re.search(r"success\s*│\s*1", failed.stdout), failed.stdout
            assert "1 message(s) failed" in failed.stderr
            assert not TERMINAL_CONTROL.search(failed.stdout + failed.stderr)
    finally:
        target.stop()


def test_errors_print_the_api_detail_and_exit_non_zero(api: str, tmp_path: Path) -> None:
    refused = taskq(api, "submit", "-", "--url", "ftp://example.com/x", stdin=b"{}\n")
    assert refused.returncode == 1
    assert "400 invalid_field" in refused.stderr
    assert "(field: url)" in refused.stderr
    assert "lines 1-1 were not submitted (0 payload(s) in 0 task(s) before them were)" in (
        refused.stderr
    )

    unknown = taskq(api, "status", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1
    assert "404 not_found" in unknown.stderr

    bad_line = taskq(api, "submit", "-", "--url", "http://127.0.0.1:9/x", stdin=b'1\n2\n{"a"\n')
    assert bad_line.returncode == 1
    assert "line 3: not valid JSON" in bad_line.stderr
    assert bad_line.stdout == ""  # the batch holding the bad line was never sent

    empty = taskq(api, "submit", "--format", "ndjson", "--url", "http://h/", "-")
    assert empty.returncode == 1
    assert "no payloads" in empty.stderr

    no_url = taskq(api, "submit", "-", stdin=b"1\n")
    assert no_url.returncode == 2
    assert "needs --url" in no_url.stderr

    down = taskq("http://127.0.0.1:9", "types", "get", "x")
    assert down.returncode == 1
    assert "cannot reach the taskq API at http://127.0.0.1:9" in down.stderr


def test_invalid_utf8_in_a_line_is_refused_with_its_line_number(api: str, tmp_path: Path) -> None:
    source = tmp_path / "broken.ndjson"
    source.write_bytes(b'{"a": 1}\n"\xff\xfe"\n')
    result = taskq(api, "submit", str(source), "--url", "http://127.0.0.1:9/x")
    assert result.returncode == 1
    assert "line 2: not valid JSON" in result.stderr


def test_api_keys_from_the_environment_never_show(settings: Settings, tmp_path: Path) -> None:
    with running_api(settings, tmp_path / "api.log", API_KEYS=KEY) as (base_url, _):
        denied = taskq(base_url, "types", "get", "default")
        assert denied.returncode == 1
        assert "401 unauthorized" in denied.stderr

        wrong = taskq(base_url, "types", "get", "default", TASKQ_API_KEY=KEY + "x")
        assert wrong.returncode == 1
        assert KEY not in wrong.stderr + wrong.stdout

        allowed = taskq(base_url, "types", "set", "keyed", "--max-rps", "5", TASKQ_API_KEY=KEY)
        assert allowed.returncode == 0, allowed.stderr
        shown = taskq(base_url, "types", "get", "keyed", "--json", TASKQ_API_KEY=KEY)
        assert json.loads(shown.stdout)["max_rps"] == 5.0


def test_types_set_changes_the_rate_alone(api: str) -> None:
    shaped = {"task_type": "shaped", "max_rps": 50, "adaptive": True, "max_retries": 9}
    assert httpx.post(f"{api}/task-types", json=shaped).status_code == 200
    changed = taskq(api, "types", "set", "shaped", "--max-rps", "20", "--json")
    assert changed.returncode == 0, changed.stderr
    view = json.loads(changed.stdout)
    assert (view["max_rps"], view["adaptive"], view["max_retries"]) == (20, True, 9)
    refused = taskq(api, "types", "set", "shaped", "--unlimited")  # adaptive needs a rate
    assert refused.returncode == 1
    assert "adaptive" in refused.stderr


def test_types_and_dlq_reprocess(api: str, db_dsn: str) -> None:
    assert taskq(api, "types", "set", "sync", "--max-rps", "2.5").returncode == 0
    shown = taskq(api, "types", "get", "sync")
    assert "2.5" in shown.stdout
    unlimited = taskq(api, "types", "set", "sync", "--unlimited", "--json")
    assert json.loads(unlimited.stdout)["max_rps"] is None
    both = taskq(api, "types", "set", "sync", "--unlimited", "--max-rps", "1")
    assert both.returncode == 2

    task = taskq(
        api, "submit", "-", "--url", "http://127.0.0.1:9/x", "--task-type", "sync",
        stdin=b"1\n2\n3\n",
    )  # fmt: skip
    assert fail_everything(db_dsn, "sync", DLQ) == 3
    again = taskq(api, "dlq", "reprocess", "--task-id", task.stdout.strip())
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "reprocessed 3 message(s)"
    assert dlq_length(db_dsn, DLQ) == 0
    assert taskq(api, "dlq", "reprocess").returncode == 1  # the API requires a filter


def test_hosts_lists_the_circuit_breakers(api: str, db_dsn: str) -> None:
    pool = create_pool(Settings(postgres_dsn=db_dsn), name="test-hosts", max_size=1)
    pool.open(wait=True)
    try:
        policy = BreakerPolicy(min_calls=4, cooldown=60.0)
        CircuitRepository(pool, policy).record({"127.0.0.1:9": HostTally(calls=4, failures=4)})
    finally:
        pool.close()
    shown = taskq(api, "hosts")
    assert shown.returncode == 0, shown.stderr
    assert "127.0.0.1:9" in shown.stdout
    assert "open" in shown.stdout
    listed = json.loads(taskq(api, "hosts", "--json").stdout)
    assert [(row["host"], row["state"]) for row in listed["hosts"]] == [("127.0.0.1:9", "open")]


ISSUE_14_COMMANDS = [
    (("GET", "/tasks"), ("tasks", "list")),
    (("GET", "/dlq"), ("dlq", "list")),
    (("POST", "/dlq/purge"), ("dlq", "purge", "--task-type", "x", "--yes")),
    (("GET", "/task-types"), ("types", "list")),
    (("POST", "/task-types/{task_type}/pause"), ("types", "pause", "x")),
    (("POST", "/task-types/{task_type}/resume"), ("types", "resume", "x")),
    (
        ("DELETE", "/tasks/{task_id}"),
        ("cancel", "00000000-0000-0000-0000-000000000000", "--yes"),
    ),
]


def older_taskq(request: Received) -> Reply:
    """A taskq API from before the day-2 routes: its spec has only the reference's paths."""
    if request.path == "/schema/openapi.json":
        paths = {"/tasks": {"post": {}}, "/tasks/{task_id}": {"get": {}}}
        return Reply(200, json.dumps({"paths": paths}).encode())
    status = 405 if request.path == "/tasks" and request.method == "GET" else 404
    return Reply(status, json.dumps({"status_code": status, "error": "not_found"}).encode())


def test_a_command_whose_route_the_server_lacks_says_so() -> None:
    server = Target(older_taskq).start()
    try:
        for (method, path), command in ISSUE_14_COMMANDS:
            result = taskq(server.url, *command)
            assert result.returncode == 2, (command, result.stderr)
            assert f"does not offer {method} {path}" in result.stderr, result.stderr
        # A 404 for a route the server has is the resource's own 404.
        unknown = taskq(server.url, "status", "00000000-0000-0000-0000-000000000000")
        assert unknown.returncode == 1
        assert "404 not_found" in unknown.stderr
    finally:
        server.stop()


def test_destructive_commands_need_a_terminal_or_yes(api: str) -> None:
    purge = taskq(api, "dlq", "purge", "--task-type", "x")
    assert purge.returncode == 2
    assert "add --yes" in purge.stderr
    assert taskq(api, "dlq", "purge").returncode == 2  # no filter: refused before asking


def test_migrate_runs_the_service_script(db_dsn: str) -> None:
    """`taskq migrate` becomes `taskq-migrate` (exec): same exit status, same output."""
    result = taskq("http://unused", "migrate", POSTGRES_DSN=db_dsn, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    broken = taskq("http://unused", "migrate", POSTGRES_DSN="postgresql://127.0.0.1:9/none")
    assert broken.returncode != 0


def test_day_two_commands(api: str, db_dsn: str) -> None:
    """tasks list, types list/pause/resume, cancel, dlq list/purge/reprocess with edits."""
    url = "http://127.0.0.1:9/x"
    alpha = taskq(api, "submit", "-", "--url", url, "--task-type", "alpha", "--item-id", "i1",
                  stdin=b"1\n2\n").stdout.strip()  # fmt: skip
    beta = taskq(api, "submit", "-", "--url", url, "--task-type", "beta",
                 stdin=b"3\n").stdout.strip()  # fmt: skip

    listed = json.loads(taskq(api, "tasks", "list", "--json").stdout)
    assert [task["task_id"] for task in listed["tasks"]] == [beta, alpha]
    only_alpha = taskq(api, "tasks", "list", "--task-type", "alpha")
    assert alpha in only_alpha.stdout
    assert beta not in only_alpha.stdout
    pages = taskq(api, "tasks", "list", "--limit", "1", "--all", "--json").stdout.splitlines()
    assert [json.loads(page)["tasks"][0]["task_id"] for page in pages] == [beta, alpha]
    one_page = taskq(api, "tasks", "list", "--limit", "1")
    assert "more: --cursor " in one_page.stderr

    shown = taskq(api, "types", "list")
    assert re.search(r"alpha\s*│[^\n]*│\s*2\s*│", shown.stdout), shown.stdout
    assert taskq(api, "types", "pause", "alpha").stdout.strip() == "alpha: paused"
    types = json.loads(taskq(api, "types", "list", "--json").stdout)["task_types"]
    assert {entry["task_type"]: entry["paused"] for entry in types} == {
        "alpha": True,
        "beta": False,
    }
    assert taskq(api, "types", "resume", "alpha").returncode == 0
    unknown = taskq(api, "types", "pause", "nope")
    assert unknown.returncode == 1
    assert "404 not_found" in unknown.stderr

    cancelled = taskq(api, "cancel", beta, "--yes", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["cancelled_count"] == 1
    assert "cancelled" in taskq(api, "status", beta).stdout
    assert taskq(api, "cancel", beta).returncode == 2  # no terminal and no --yes

    assert fail_everything(db_dsn, "alpha", DLQ) == 2
    letters = json.loads(taskq(api, "dlq", "list", "--json").stdout)["dead_letters"]
    assert len(letters) == 2
    assert "alpha" in taskq(api, "dlq", "list").stdout
    first, second = (letter["message_id"] for letter in letters)
    purged = taskq(api, "dlq", "purge", "--message-id", str(first), "--yes", "--json")
    assert json.loads(purged.stdout) == {"purged_count": 1}
    edited = taskq(
        api, "dlq", "reprocess", "--message-id", str(second), "--set-data", '{"edited": true}'
    )
    assert edited.stdout.strip() == "reprocessed 1 message(s)", edited.stderr
    after = json.loads(taskq(api, "status", alpha, "--json").stdout)["statuses"]
    assert sorted(entry["status"] for entry in after) == ["failed", "pending"]
    assert queue_length(db_dsn, "alpha") == 1
    assert taskq(api, "dlq", "list", "--json").stdout.count("message_id") == 0


def test_dev_runs_what_make_run_runs(settings: Settings, tmp_path: Path) -> None:
    """`taskq dev` against POSTGRES_DSN: migrate, API and worker up; Ctrl-C stops all, exit 0."""
    environment = settings_environment(settings)
    log = tmp_path / "dev.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(BIN / "taskq"), "dev"], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        ready = f"http://127.0.0.1:{environment['PORT']}/health/ready"

        def answers() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(ready, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout=60, interval=0.2)
        submitted = taskq(
            f"http://127.0.0.1:{environment['PORT']}", "submit", "-", "--url", "http://h/x",
            stdin=b"1\n",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
