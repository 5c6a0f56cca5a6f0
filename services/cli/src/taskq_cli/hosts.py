"""`taskq hosts`: the per-host circuit breakers the workers share."""

from __future__ import annotations

import click

from taskq_cli.client import ApiClient, Route
from taskq_cli.commands import json_option
from taskq_cli.output import list_in, print_json, stdout, table

LIST_HOSTS = Route("GET", "/hosts")


@click.command(
    epilog="""\b
Examples:
  taskq hosts
  taskq hosts --json | jq '.hosts[] | select(.state != "closed")'
""",
)
@json_option
@click.pass_obj
def hosts(client: ApiClient, as_json: bool) -> None:
    """Every target host's circuit breaker: closed, open (calls wait) or half_open (probing)."""
    reply = client.call(LIST_HOSTS)
    if as_json:
        print_json(reply)
    else:
        columns = ("host", "state", "calls", "failures", "times_opened", "opens_until")
        stdout().print(table(list_in(reply), title="hosts", columns=columns))
