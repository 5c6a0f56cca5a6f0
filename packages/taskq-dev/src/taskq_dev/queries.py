"""The named SQL blocks of the development tooling, the bench and the tests (`sql/*.sql`).

Kept out of the core's QUERIES so that the runtime package carries only what the
services run; the files use the same `-- name:` format and loader.
"""

from __future__ import annotations

from importlib.resources import files

from taskq_core.queries import load_named_blocks

# The files ship inside the package, so their text is as trusted as a literal.
DEV_QUERIES = load_named_blocks(files("taskq_dev").joinpath("sql"))
