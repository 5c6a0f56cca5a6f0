"""`taskq tasks list` and `taskq cancel`."""

from __future__ import annotations

import click

from taskq_cli.client import ApiClient, Route
from taskq_cli.commands import confirm, json_option, list_command, yes_option
from taskq_cli.output import print_json, stdout, table

LIST_TASKS = Route("GET", "/tasks")
CANCEL_TASK = Route("DELETE", "/tasks/{task_id}")
CANCEL_MESSAGE = Route("DELETE", "/tasks/{task_id}/messages/{message_id}")


@click.group()
def tasks() -> None:
    """List tasks."""


list_command(
    tasks,
    LIST_TASKS,
    click.option("--task-type"),
    click.option("--status", type=click.Choice(["pending", "success", "failed", "cancelled"])),
    click.option("--item-id"),
    click.option("--created-after", help="ISO 8601 time."),
    click.option("--created-before", help="ISO 8601 time."),
    title="tasks",
    columns=("task_id", "task_type", "item_id", "created_at"),
    summary="Tasks, newest first, with their message counts by status.",
    epilog="""\b
Examples:
  taskq tasks list --task-type sync --status failed
  taskq tasks list --item-id abc123 --json
  taskq tasks list --created-after 2026-11-30T00:00:00Z --all
""",
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
