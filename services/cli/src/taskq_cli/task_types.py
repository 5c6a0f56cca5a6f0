"""`taskq types list|get|set|pause|resume`: task types and their rate limits."""

from __future__ import annotations

import click

from taskq_cli.client import ApiClient, ApiError, Route
from taskq_cli.commands import json_option
from taskq_cli.output import list_in, print_json, stdout, table

LIST_TYPES = Route("GET", "/task-types")
GET_TYPE = Route("GET", "/task-types/{task_type}")
CONFIGURE_TYPE = Route("POST", "/task-types")
SET_TYPE_RATE = Route("PATCH", "/task-types/{task_type}")
PAUSE_TYPE = Route("POST", "/task-types/{task_type}/pause")
RESUME_TYPE = Route("POST", "/task-types/{task_type}/resume")


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
    """Set TASK_TYPE's global rate limit (the sum over all workers).

    Only the limit changes: the type's delivery defaults, max_concurrency and
    adaptive setting stay. A type not seen before is created with the limit alone.
    """
    if (max_rps is None) == (not unlimited):
        raise click.UsageError("give exactly one of --max-rps N or --unlimited")
    try:
        reply = client.call(SET_TYPE_RATE, json={"max_rps": max_rps}, task_type=task_type)
    except ApiError as error:
        if error.status_code != 404:
            raise
        reply = client.call(CONFIGURE_TYPE, json={"task_type": task_type, "max_rps": max_rps})
    if as_json:
        print_json(reply)
    else:
        stdout().print(table([reply], title=f"task type {task_type}"))


def _switch(client: ApiClient, route: Route, task_type: str, as_json: bool, done: str) -> None:
    # Every POST carries a JSON body (the API refuses others with 415), even an empty one.
    reply = client.call(route, json={}, task_type=task_type)
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
