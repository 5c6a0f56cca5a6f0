"""`taskq dlq list|reprocess|purge`: dead letters, requeued (optionally edited) or deleted."""

from __future__ import annotations

import json
from typing import Any

import click

from taskq_cli.client import ApiClient, Route
from taskq_cli.commands import confirm, json_option, list_command, yes_option
from taskq_cli.output import print_json, stdout, table
from taskq_cli.submit import parse_header

LIST_DLQ = Route("GET", "/dlq")
REPROCESS_DLQ = Route("POST", "/dlq/reprocess")
PURGE_DLQ = Route("POST", "/dlq/purge")


@click.group()
def dlq() -> None:
    """Dead letters: list, reprocess (optionally edited), purge."""


list_command(
    dlq,
    LIST_DLQ,
    click.option("--task-type"),
    click.option("--task-id"),
    title="dead letters",
    columns=("message_id", "task_id", "task_type", "attempt", "http_status", "error"),
    summary="Dead letters with their last error, HTTP status and attempts.",
    epilog="""\b
Examples:
  taskq dlq list --task-type sync
  taskq dlq list --task-id 7c0e… --json | jq '.[]'
""",
)


def overrides_of(
    url: str | None, headers: dict[str, str], data: str | None, max_retries: int | None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if url:
        overrides["url"] = url
    if headers:
        overrides["headers"] = headers
    if data is not None:
        try:
            overrides["data"] = json.loads(data)
        except ValueError as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint="--set-data") from None
    if max_retries is not None:
        overrides["max_retries"] = max_retries
    return overrides


@dlq.command(
    epilog="""\b
Examples:
  taskq dlq reprocess --task-type sync
  taskq dlq reprocess --task-id 7c0e…
  taskq dlq reprocess --message-id 12 --message-id 13 \\
      --set-url https://fixed.example.com/sync --set-header 'Authorization: Bearer new'
"""
)
@click.option("--task-type")
@click.option("--task-id")
@click.option("--message-id", "message_ids", type=int, multiple=True, help="Repeatable.")
@click.option("--set-url", help="Requeue with this URL instead.")
@click.option(
    "--set-header", "set_headers", multiple=True, callback=parse_header, help="'Name: value'."
)
@click.option("--set-data", help="Requeue with this JSON body instead.")
@click.option("--set-max-retries", type=click.IntRange(0, 100))
@json_option
@click.pass_obj
def reprocess(
    client: ApiClient,
    *,
    task_type: str | None,
    task_id: str | None,
    message_ids: tuple[int, ...],
    set_url: str | None,
    set_headers: dict[str, str],
    set_data: str | None,
    set_max_retries: int | None,
    as_json: bool,
) -> None:
    """Send dead letters back to their queues (each message once, even when raced)."""
    body: dict[str, Any] = {"task_type": task_type, "task_id": task_id}
    if message_ids:
        body["message_ids"] = list(message_ids)
    overrides = overrides_of(set_url, set_headers, set_data, set_max_retries)
    if overrides:
        body["overrides"] = overrides
    reply = client.call(
        REPROCESS_DLQ, json={name: value for name, value in body.items() if value is not None}
    )
    if as_json:
        print_json(reply)
    else:
        click.echo(f"reprocessed {reply['reprocessed_count']} message(s)")


@dlq.command(
    epilog="""\b
Examples:
  taskq dlq purge --task-type sync          # asks first
  taskq dlq purge --task-id 7c0e… --yes
  taskq dlq purge --message-id 12 --message-id 13 --yes
"""
)
@click.option("--task-type")
@click.option("--task-id")
@click.option("--message-id", "message_ids", type=int, multiple=True, help="Repeatable.")
@yes_option
@json_option
@click.pass_obj
def purge(
    client: ApiClient,
    /,
    *,
    task_type: str | None,
    task_id: str | None,
    message_ids: tuple[int, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Delete dead letters for good (a filter is required)."""
    if task_type is None and task_id is None and not message_ids:
        raise click.UsageError(
            "give --task-type, --task-id or --message-id: purging everything is refused"
        )
    scope = " and ".join(
        f"{name} {value}"
        for name, value in (
            ("type", task_type),
            ("task", task_id),
            ("messages", ",".join(map(str, message_ids))),
        )
        if value
    )
    confirm(f"Delete the dead letters of {scope} for good?", yes=yes)
    body = {"task_type": task_type, "task_id": task_id, "message_ids": list(message_ids) or None}
    reply = client.call(
        PURGE_DLQ, json={name: value for name, value in body.items() if value is not None}
    )
    if as_json:
        print_json(reply)
    else:
        stdout().print(table([reply], title="purged"))
