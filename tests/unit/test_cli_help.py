"""Every `taskq` command answers --help with examples, and parses its input strictly."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from taskq_cli.main import cli
from taskq_cli.output import cell, list_in
from taskq_cli.submit import batch_fields


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


ALL_COMMANDS = sorted(command_paths(cli))


def test_the_command_tree_covers_the_issue() -> None:
    assert {" ".join(path) for path in ALL_COMMANDS} >= {
        "submit", "status", "tasks list", "dlq list", "dlq reprocess", "dlq purge",
        "types list", "types set", "types pause", "types resume", "cancel",
        "migrate", "api", "worker", "dev",
    }  # fmt: skip


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda path: " ".join(path) or "taskq")
def test_help_with_examples_everywhere(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    if not isinstance(command, click.Group) or not path:
        assert "Example" in result.output, path


def test_bad_header_flag_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["submit", "-", "--url", "http://h/", "-H", "NoColon"])
    assert result.exit_code == 2
    assert "expected 'Name: value'" in result.output


def test_helpers() -> None:
    assert batch_fields(url="u", timeout="1500", item_id=None, headers={}) == {
        "url": "u",
        "timeout": 1500,
    }
    assert batch_fields(timeout="10s") == {"timeout": "10s"}
    assert cell({"a": 1, "b": None}) == "a=1 b="
    assert cell([1, 2]) == "1,2"
    assert list_in({"next_cursor": None, "tasks": [{"a": 1}]}) == [{"a": 1}]
    assert list_in([{"a": 1}]) == [{"a": 1}]
    assert list_in({"count": 3}) == []
