"""Day-2 commands over the API: tasks, the DLQ, task types, cancellation.

Each command maps to one route. Against a server that lacks the route (a taskq
older than the command), the client says so and exits 2 rather than showing a
bare 404. List replies are shown as tables whatever their exact columns, so a
field the server adds later shows up without a CLI release.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from taskq_cli.client import ApiClient, Route
from taskq_cli.output import list_in, print_json, stderr, stdout, table
from taskq_cli.submit import parse_header

LIST_TASKS = Route("GET", "/tasks")
CANCEL_TASK = Route("DELETE", "/tasks/{task_id}")
CANCEL_MESSAGE = Route("DELETE", "/tasks/{task_id}/messages/{message_id}")
LIST_DLQ = Route("GET", "/dlq")
REPROCESS_DLQ = Route("POST", "/dlq/reprocess")
PURGE_DLQ = Route("POST", "/dlq/purge")
LIST_TYPES = Route("GET", "/task-types")
GET_TYPE = Route("GET", "/task-types/{task_type}")
CONFIGURE_TYPE = Route("POST", "/task-types")
PAUSE_TYPE = Route("POST", "/task-types/{task_type}/pause")
RESUME_TYPE = Route("POST", "/task-types/{task_type}/resume")

json_option = click.option("--json", "as_json", is_flag=True, help="Print the reply as JSON.")
limit_option = click.option("--limit", type=click.IntRange(1, 1000), help="Rows per page.")
cursor_option = click.option("--cursor", help="next_cursor of a previous page.")
all_option = click.option(
    "--all", "every_page", is_flag=True, help="Follow next_cursor to the last page."
)
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def confirm(question: str, *, yes: bool) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Refusing without a terminal: add --yes.")
    click.confirm(question, abort=True, err=True)


def show_pages(
    client: ApiClient,
    route: Route,
    params: dict[str, Any],
    *,
    title: str,
    columns: tuple[str, ...],
    as_json: bool,
    every_page: bool,
) -> None:
    """One page (or every page with --all) as tables, or as JSON documents, one per page."""
    while True:
        reply = client.call(route, params=params)
        if as_json:
            print_json(reply)
        else:
            stdout().print(table(list_in(reply), title=title, columns=columns))
        cursor = reply.get("next_cursor") if isinstance(reply, dict) else None
        if not every_page or not cursor:
            if cursor and not as_json:
                stderr().print(f"more: --cursor {cursor}", soft_wrap=True)
            return
        params = {**params, "cursor": cursor}


@click.group()
def tasks() -> None:
    """List tasks."""


@tasks.command(
    "list",
    epilog="""\b
Examples:
  taskq tasks list --task-type sync --status failed
  taskq tasks list --item-id abc123 --json
  taskq tasks list --created-after 2026-11-30T00:00:00Z --all
""",
)
@click.option("--task-type")
@click.option("--status", type=click.Choice(["pending", "success", "failed", "cancelled"]))
@click.option("--item-id")
@click.option("--created-after", help="ISO 8601 time.")
@click.option("--created-before", help="ISO 8601 time.")
@limit_option
@cursor_option
@all_option
@json_option
@click.pass_obj
def list_tasks(
    client: ApiClient, /, *, as_json: bool, every_page: bool, **filters: str | int | None
) -> None:
    """Tasks, newest first, with their message counts by status."""
    show_pages(
        client,
        LIST_TASKS,
        dict(filters),
        title="tasks",
        columns=("task_id", "task_type", "item_id", "created_at"),
        as_json=as_json,
        every_page=every_page,
    )


@click.command(
    epilog="""\b
Examples:
  taskq cancel 7c0e…                    # every message not delivered yet
  taskq cancel 7c0e… --message-id 42 --yes
"""
)
@click.argument("task_id")
@click.option("--message-id", type=int, help="Cancel only this message of the task.")
@yes_option
@json_option
@click.pass_obj
def cancel(
    client: ApiClient, task_id: str, message_id: int | None, yes: bool, as_json: bool
) -> None:
    """Cancel what of TASK_ID has not been delivered yet (a call in flight finishes)."""
    target = f"message {message_id} of task {task_id}" if message_id else f"task {task_id}"
    confirm(f"Cancel {target}?", yes=yes)
    if message_id is None:
        reply = client.call(CANCEL_TASK, task_id=task_id)
    else:
        reply = client.call(CANCEL_MESSAGE, task_id=task_id, message_id=message_id)
    if as_json:
        print_json(reply)
    else:
        stdout().print(table([reply], title=f"cancelled: {target}"))


@click.group()
def dlq() -> None:
    """Dead letters: list, reprocess (optionally edited), purge."""


@dlq.command(
    "list",
    epilog="""\b
Examples:
  taskq dlq list --task-type sync
  taskq dlq list --task-id 7c0e… --json | jq '.[]'
""",
)
@click.option("--task-type")
@click.option("--task-id")
@limit_option
@cursor_option
@all_option
@json_option
@click.pass_obj
def list_dlq(
    client: ApiClient, /, *, as_json: bool, every_page: bool, **filters: str | int | None
) -> None:
    """Dead letters with their last error, HTTP status and attempts."""
    show_pages(
        client,
        LIST_DLQ,
        dict(filters),
        title="dead letters",
        columns=("message_id", "task_id", "task_type", "attempt", "http_status", "error"),
        as_json=as_json,
        every_page=every_page,
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


@click.group()
def types() -> None:
    """Task types: rate limits, pause and resume."""


@types.command(
    "list",
    epilog="""\b
Examples:
  taskq types list
  taskq types list --json | jq '.[] | {task_type, backlog}'
""",
)
@json_option
@click.pass_obj
def list_types(client: ApiClient, as_json: bool) -> None:
    """Every task type with its configuration and live figures."""
    reply = client.call(LIST_TYPES)
    if as_json:
        print_json(reply)
    else:
        stdout().print(
            table(list_in(reply), title="task types", columns=("task_type", "max_rps", "paused"))
        )


@types.command("get", epilog="Example:\n\n  taskq types get sync --json")
@click.argument("task_type")
@json_option
@click.pass_obj
def get_type(client: ApiClient, task_type: str, as_json: bool) -> None:
    """One task type's configuration."""
    reply = client.call(GET_TYPE, task_type=task_type)
    if as_json:
        print_json(reply)
    else:
        stdout().print(table([reply], title=f"task type {task_type}"))


@types.command(
    "set",
    epilog="""\b
Examples:
  taskq types set sync --max-rps 20
  taskq types set sync --unlimited
""",
)
@click.argument("task_type")
@click.option("--max-rps", type=click.FloatRange(min=0, min_open=True))
@click.option("--unlimited", is_flag=True, help="Remove the rate limit.")
@json_option
@click.pass_obj
def set_type(
    client: ApiClient, task_type: str, max_rps: float | None, unlimited: bool, as_json: bool
) -> None:
    """Set TASK_TYPE's global rate limit (the sum over all workers)."""
    if (max_rps is None) == (not unlimited):
        raise click.UsageError("give exactly one of --max-rps N or --unlimited")
    reply = client.call(CONFIGURE_TYPE, json={"task_type": task_type, "max_rps": max_rps})
    if as_json:
        print_json(reply)
    else:
        stdout().print(table([reply], title=f"task type {task_type}"))


def _switch(client: ApiClient, route: Route, task_type: str, as_json: bool, done: str) -> None:
    reply = client.call(route, task_type=task_type)
    if as_json:
        print_json(reply)
    else:
        click.echo(f"{task_type}: {done}")


@types.command(epilog="Example:\n\n  taskq types pause sync")
@click.argument("task_type")
@json_option
@click.pass_obj
def pause(client: ApiClient, task_type: str, as_json: bool) -> None:
    """Stop delivering TASK_TYPE's messages (they stay queued)."""
    _switch(client, PAUSE_TYPE, task_type, as_json, "paused")


@types.command(epilog="Example:\n\n  taskq types resume sync")
@click.argument("task_type")
@json_option
@click.pass_obj
def resume(client: ApiClient, task_type: str, as_json: bool) -> None:
    """Deliver TASK_TYPE's messages again, where they were."""
    _switch(client, RESUME_TYPE, task_type, as_json, "resumed")
