"""`python -m taskq_api.openapi_export DIR`: writes DIR/openapi.json and DIR/openapi.yaml.

The committed files let clients and reviewers read the contract without
running the service; a test regenerates them and fails when they are stale.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from taskq_api.app import create_app
from taskq_core.settings import Settings


def openapi_document() -> dict[str, Any]:
    """The spec the app serves at /schema/openapi.json, as plain data."""
    # Default settings: building the app opens no connection, so no database is needed.
    # A placeholder key: the published contract is the secured one (SECURITY.md).
    secured = Settings(api_keys=("placeholder-key-not-used",))
    document: dict[str, Any] = with_clean_descriptions(
        create_app(secured).openapi_schema.to_schema()
    )
    return document


def with_clean_descriptions(node: Any) -> Any:
    """`node` with every `description` text dedented as `inspect.cleandoc` does.

    Litestar copies an Enum's docstring verbatim, and Python 3.13 strips the
    indentation of docstrings when it compiles them, so without this the spec
    would differ between the supported Pythons.
    """
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else with_clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [with_clean_descriptions(item) for item in node]
    return node


def render(document: dict[str, Any]) -> dict[str, str]:
    """{file name: text} of the exported files, deterministic for a given spec."""
    return {
        "openapi.json": json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        "openapi.yaml": yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
    }


def export(directory: Path) -> list[Path]:
    """Write the files into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(openapi_document()).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    directory = Path(arguments[0] if arguments else "docs")
    for path in export(directory):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
