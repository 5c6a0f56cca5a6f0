"""What the CLI prints: results on stdout (tables, or JSON with --json), progress on stderr.

Progress bars are drawn only when stderr is a terminal, so a pipe or a log file
gets the results and a plain summary line, never cursor movements.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


def stdout() -> Console:
    """Results; plain text without colours when piped."""
    return Console(soft_wrap=False, highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """One JSON document on stdout, for scripts (`--json`)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def progress(*, show: bool, counting: str = "done") -> Progress:
    """A progress bar on stderr; disabled (prints nothing) when `show` is false."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(counting),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr(),
        disable=not show,
        transient=False,
    )


def shows_progress(no_progress: bool) -> bool:
    """Progress only for a person watching a terminal."""
    return not no_progress and stderr().is_terminal


def cell(value: Any) -> str:
    """A table cell: nested objects compact, null empty."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return " ".join(f"{key}={cell(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ",".join(cell(item) for item in value)
    return str(value)


def table(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    columns: Iterable[str] = (),
) -> Table:
    """Rows as a table with `columns` first (those present), then every other key."""
    keys: list[str] = [name for name in columns if any(name in row for row in rows)]
    for row in rows:
        keys.extend(name for name in row if name not in keys)
    result = Table(title=title, show_lines=False)
    for name in keys:
        result.add_column(name, overflow="fold")
    for row in rows:
        result.add_row(*(cell(row.get(name)) for name in keys))
    return result


def list_in(reply: Any) -> list[Mapping[str, Any]]:
    """The rows of a list reply: the reply itself, or its first list-valued field."""
    if isinstance(reply, list):
        return reply
    if isinstance(reply, Mapping):
        for value in reply.values():
            if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
                return value
    return []
