"""`taskq status`: where each message of a task stands, once or followed to the end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.table import Table

from taskq_cli.client import ApiClient, Route
from taskq_cli.output import print_json, progress, shows_progress, stderr, stdout, table

TASK_STATUS = Route("GET", "/tasks/{task_id}")
FINAL = frozenset({"success", "failed", "cancelled"})
MESSAGE_COLUMNS = (
    "payload_id",
    "message_id",
    "status",
    "attempt",
    "http_status",
    "duration_ms",
    "error",
    "updated_at",
)


def counts_by_status(statuses: Sequence[Mapping[str, Any]]) -> Counter[str]:
    return Counter(str(entry["status"]) for entry in statuses)


def summary_table(counts: Counter[str]) -> Table:
    result = Table()
    result.add_column("status")
    result.add_column("messages", justify="right")
    for status, count in sorted(counts.items()):
        result.add_row(status, str(count))
    return result


def messages_table(statuses: Sequence[Mapping[str, Any]]) -> Table:
    rows = [{name: entry.get(name) for name in MESSAGE_COLUMNS} for entry in statuses]
    return table(rows, columns=MESSAGE_COLUMNS)


def finished(counts: Counter[str]) -> bool:
    return all(status in FINAL for status in counts)


def watch(
    client: ApiClient, task_id: str, *, interval: float, show_progress: bool
) -> dict[str, Any]:
    """Poll until every message is final; returns the last reply."""
    with progress(show=show_progress, counting="final") as bar:
        task = bar.add_task(f"task {task_id[:8]}", total=None)
        while True:
            reply: dict[str, Any] = client.call(TASK_STATUS, task_id=task_id)
            counts = counts_by_status(reply["statuses"])
            done = sum(count for status, count in counts.items() if status in FINAL)
            bar.update(task, total=sum(counts.values()), completed=done)
            if finished(counts):
                return reply
            time.sleep(interval)


@click.command(
    epilog="""\b
Examples:
  taskq status 7c0e…                 # a table of messages (a summary when there are many)
  taskq status 7c0e… --summary       # counts by status
  taskq status 7c0e… --watch         # follow to the end; exit 1 if any message failed
  taskq status 7c0e… --json | jq '.statuses[] | select(.status == "failed")'
"""
)
@click.argument("task_id")
@click.option("--watch", "follow", is_flag=True, help="Poll until every message is final.")
@click.option(
    "--interval", type=click.FloatRange(0.1), default=1.0, show_default=True, help="Seconds."
)
@click.option("--summary", is_flag=True, help="Counts by status, whatever the size.")
@click.option(
    "--table-limit",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Above this many messages, show the summary instead of every row.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's reply as JSON.")
@click.option("--no-progress", is_flag=True, help="Never draw a progress bar.")
@click.pass_obj
def status(
    client: ApiClient,
    *,
    task_id: str,
    follow: bool,
    interval: float,
    summary: bool,
    table_limit: int,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Show the status of every message of TASK_ID.

    With --watch, follow the task until every message is final (success, failed
    or cancelled) and exit with status 1 if any failed.
    """
    if follow:
        reply = watch(client, task_id, interval=interval, show_progress=shows_progress(no_progress))
    else:
        reply = client.call(TASK_STATUS, task_id=task_id)
    statuses = reply["statuses"]
    counts = counts_by_status(statuses)
    if as_json:
        print_json(reply)
    else:
        console = stdout()
        console.print(f"task {task_id}: {len(statuses)} message(s)", soft_wrap=True)
        console.print(
            summary_table(counts)
            if summary or len(statuses) > table_limit
            else messages_table(statuses)
        )
    if follow and counts["failed"]:
        stderr().print(f"{counts['failed']} message(s) failed", soft_wrap=True)
        raise SystemExit(1)
