"""What the day-2 commands share: confirmation, paging through list replies, common options.

Each command maps to one route. Against a server that lacks the route (a taskq
older than the command), the client says so and exits 2 rather than showing a
bare 404. List replies are shown as tables whatever their exact columns, so a
field the server adds later shows up without a CLI release.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from taskq_cli.client import ApiClient, Route
from taskq_cli.output import list_in, print_json, stderr, stdout, table

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


def list_command(
    group: click.Group,
    route: Route,
    *filters: Callable[[Callable[..., Any]], Callable[..., Any]],
    title: str,
    columns: tuple[str, ...],
    summary: str,
    epilog: str,
) -> click.Command:
    """Add `list` to `group`: `route`'s pages, with `filters` as query parameters.

    Every list command pages the same way (--limit, --cursor, --all) and
    prints the same way (tables, or --json), so only the route, the filters and
    the columns differ.
    """

    def list_pages(
        client: ApiClient, /, *, as_json: bool, every_page: bool, **params: str | int | None
    ) -> None:
        show_pages(
            client,
            route,
            dict(params),
            title=title,
            columns=columns,
            as_json=as_json,
            every_page=every_page,
        )

    command: Callable[..., Any] = click.pass_obj(list_pages)
    for option in reversed((*filters, limit_option, cursor_option, all_option, json_option)):
        command = option(command)
    return group.command("list", help=summary, epilog=epilog)(command)
