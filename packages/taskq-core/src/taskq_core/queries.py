"""Loads the named SQL blocks of `sql/queries/*.sql` once, at import.

A block starts at a `-- name: NAME` line and runs to the next one; names are
unique across files. Every statement taskq runs lives in these files (one per
component) so SQL stays reviewable as SQL and out of the Python code, in the
way procrastinate keeps its queries.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

_NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse_named_blocks(text: str) -> dict[str, str]:
    """Split `text` into {name: statement} at `-- name:` lines."""
    parts = _NAME_LINE.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"duplicate query name {name!r}")
        blocks[name] = body.strip()
    return blocks


def load_named_blocks(folder: Traversable) -> dict[str, str]:
    """Every named block of the `.sql` files in `folder`; a name defined twice is an error."""
    blocks: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".sql"):
            for name, statement in parse_named_blocks(entry.read_text(encoding="utf-8")).items():
                if name in blocks:
                    raise ValueError(f"query {name!r} is defined in two files")
                blocks[name] = statement
    return blocks


# The files ship inside the package, so their text is as trusted as a literal.
QUERIES = load_named_blocks(files("taskq_core").joinpath("sql", "queries"))
