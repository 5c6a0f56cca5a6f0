"""`taskq submit`: a JSON batch as one task, or NDJSON payloads streamed in batches.

A JSON batch (the body of POST /tasks) is sent as it is: the API accepts all of
it or none. NDJSON is read one line at a time and sent every --batch-size lines,
so a file of millions of payloads never sits in memory; each batch is its own
task (atomic), and its id is printed as soon as it is accepted, so after an error
the ids already printed are exactly what was queued.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from taskq_cli.client import ApiClient, Route
from taskq_cli.output import print_json, shows_progress, stderr

SUBMIT = Route("POST", "/tasks")
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


@dataclass(frozen=True)
class Line:
    number: int
    raw: bytes


class InputError(click.ClickException):
    """The input file itself is wrong (not JSON, not a batch)."""


def parse_header(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, separator, content = value.partition(":")
        if not separator or not name.strip():
            raise click.BadParameter(f"expected 'Name: value', got {value!r}")
        headers[name.strip()] = content.strip()
    return headers


def batch_fields(**flags: Any) -> dict[str, Any]:
    """The batch fields given on the command line (unset flags are left out)."""
    fields = {name: value for name, value in flags.items() if value not in (None, {}, "")}
    timeout = fields.get("timeout")
    if isinstance(timeout, str) and timeout.isdigit():
        fields["timeout"] = int(timeout)
    return fields


def looks_like_ndjson(source: IO[bytes], first: bytes) -> bool:
    """NDJSON when the file says so, or when its first line is a JSON value but not a batch."""
    if str(getattr(source, "name", "")).endswith(NDJSON_SUFFIXES):
        return True
    try:
        value = json.loads(first)
    except ValueError:
        return False  # a pretty-printed batch starts with a lone "{"
    return not (isinstance(value, dict) and "payloads" in value)


def lines_of(source: IO[bytes], first: bytes) -> Iterator[Line]:
    yield Line(1, first)
    for number, raw in enumerate(source, start=2):
        yield Line(number, raw)


def payload_of(line: Line, *, data_lines: bool) -> dict[str, Any]:
    try:
        value = json.loads(line.raw)
    except ValueError as error:
        raise InputError(f"line {line.number}: not valid JSON: {error}") from None
    if data_lines:
        return {"data": value}
    if not isinstance(value, dict) or not set(value) <= {"data", "api_override"}:
        raise InputError(
            f"line {line.number}: with --lines payload each line is an object with "
            "'data' and optionally 'api_override'"
        )
    return value


def size_of(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError):
        return None


def submit_batch_file(
    client: ApiClient, source: IO[bytes], first: bytes, fields: dict[str, Any], *, as_json: bool
) -> None:
    try:
        batch = json.loads(first + source.read())
    except ValueError as error:
        raise InputError(f"not a JSON batch (nor NDJSON): {error}") from None
    if not isinstance(batch, dict):
        raise InputError("a JSON batch is an object with 'url' and 'payloads' (see POST /tasks)")
    batch.update(fields)
    created = client.call(SUBMIT, json=batch)
    if as_json:
        print_json(created)
    else:
        click.echo(created["task_id"])
    stderr().print(f"submitted {len(created['message_ids'])} payload(s) as 1 task", soft_wrap=True)


def submit_ndjson(
    client: ApiClient,
    source: IO[bytes],
    first: bytes,
    fields: dict[str, Any],
    *,
    batch_size: int,
    data_lines: bool,
    as_json: bool,
    show_progress: bool,
) -> None:
    if "url" not in fields:
        raise click.UsageError("NDJSON input needs --url (the target every payload is sent to)")
    total = size_of(source)
    submitted = tasks = 0
    pending: list[dict[str, Any]] = []
    first_line = 1
    bar = Progress(
        TextColumn("[bold]submitting"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[payloads]} payloads in {task.fields[tasks]} tasks"),
        TimeElapsedColumn(),
        console=stderr(),
        disable=not show_progress,
    )

    def send(last_line: int) -> None:
        nonlocal submitted, tasks, first_line
        try:
            created = client.call(SUBMIT, json={**fields, "payloads": pending})
        except click.ClickException:
            # Click prints the cause (the API's detail) next, with its exit status.
            stderr().print(
                f"lines {first_line}-{last_line} were not submitted"
                f" ({submitted} payload(s) in {tasks} task(s) before them were)",
                soft_wrap=True,
            )
            raise
        if as_json:
            print_json({**created, "lines": [first_line, last_line]})
        else:
            click.echo(created["task_id"])
        submitted += len(created["message_ids"])
        tasks += 1
        first_line = last_line + 1
        pending.clear()

    with bar:
        progress = bar.add_task("submit", total=total, payloads=0, tasks=0)
        last_number = 0
        for line in lines_of(source, first):
            bar.update(progress, advance=len(line.raw))
            last_number = line.number
            if not line.raw.strip():
                continue
            pending.append(payload_of(line, data_lines=data_lines))
            if len(pending) == batch_size:
                send(line.number)
                bar.update(progress, payloads=submitted, tasks=tasks)
        if pending:
            send(last_number)
            bar.update(progress, payloads=submitted, tasks=tasks)
    if tasks == 0:
        raise InputError("no payloads: the input has no non-empty line")
    stderr().print(f"submitted {submitted} payload(s) in {tasks} task(s)", soft_wrap=True)


@click.command(
    epilog="""\b
Examples:
  taskq submit batch.json                       # the body of POST /tasks, one task
  taskq submit records.ndjson --url https://api.example.com/sync --task-type sync
  cat records.ndjson | taskq submit - --url https://api.example.com/sync \\
      --batch-size 5000 --max-rps 50 -H 'Authorization: Bearer …'
  taskq submit records.ndjson --url … --json | jq -r .task_id
"""
)
@click.argument("source", type=click.File("rb"), metavar="FILE|-")
@click.option("--url", help="Target URL (required for NDJSON; overrides a batch's).")
@click.option("--task-type", help="Task type (rate limit and queue).")
@click.option("--item-id", help="Your own reference for the task.")
@click.option(
    "--method", type=click.Choice(["POST", "PATCH", "PUT", "DELETE", "GET"], case_sensitive=False)
)
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    callback=parse_header,
    help="'Name: value' sent with every call; repeatable.",
)
@click.option("--max-retries", type=click.IntRange(0, 100))
@click.option("--retry-delay", type=click.IntRange(0), help="Base backoff in ms.")
@click.option("--timeout", help="Per-call timeout: ms, or a duration such as 10s.")
@click.option("--max-rps", type=click.FloatRange(min=0, min_open=True), help="Type's rate limit.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="NDJSON lines per POST /tasks (at most the server's MAX_PAYLOADS).",
)
@click.option(
    "--lines",
    type=click.Choice(["data", "payload"]),
    default="data",
    show_default=True,
    help="NDJSON: each line is the call's JSON body (data), or {data, api_override} (payload).",
)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", "batch", "ndjson"]),
    default="auto",
    show_default=True,
    help="auto: .ndjson/.jsonl, or a first line that is a whole JSON value, is NDJSON.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's replies as JSON lines.")
@click.option("--no-progress", is_flag=True, help="Never draw a progress bar.")
@click.pass_obj
def submit(
    client: ApiClient,
    /,
    *,
    source: IO[bytes],
    headers: dict[str, str],
    batch_size: int,
    lines: str,
    input_format: str,
    as_json: bool,
    no_progress: bool,
    **flags: Any,
) -> None:
    """Submit payloads from FILE (or - for stdin) and print the task ids, one per line.

    FILE is a JSON batch (the body of POST /tasks) or NDJSON: one payload per
    line, sent in batches of --batch-size, each batch one task, with a progress
    bar when stderr is a terminal.
    """
    fields = batch_fields(headers=headers, **flags)
    if "method" in fields:
        fields["method"] = fields["method"].upper()
    first = source.readline()
    ndjson = input_format == "ndjson" or (
        input_format == "auto" and looks_like_ndjson(source, first)
    )
    if ndjson:
        submit_ndjson(
            client,
            source,
            first,
            fields,
            batch_size=batch_size,
            data_lines=lines == "data",
            as_json=as_json,
            show_progress=shows_progress(no_progress),
        )
    else:
        submit_batch_file(client, source, first, fields, as_json=as_json)
