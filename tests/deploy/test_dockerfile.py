"""deploy/docker/Dockerfile checked without a Docker engine: what it copies exists and
is in the build context, the final stage is slim and unprivileged, and it runs the
console scripts that `make` runs."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field

from tests.deploy.support import (
    DEPLOY,
    IMAGE_ENV,
    PROCESS_COMMANDS,
    REPO,
    installed_console_scripts,
    settings_variables,
)

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "libpq-dev", "python3-dev")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def _stages() -> list[Stage]:
    stages: list[Stage] = []
    for instruction, arguments in _instructions():
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((instruction, arguments))
    return stages


def _dockerignore_allows(relative: str) -> bool:
    """Whether .dockerignore leaves `relative` in the build context (last match wins)."""
    allowed = True
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            allowed = negate
    return allowed


def _copy_sources(arguments: str) -> list[str]:
    words = [word for word in shlex.split(arguments) if not word.startswith("--")]
    return words[:-1]


def test_copy_sources_exist_in_the_build_context() -> None:
    """The build context is the repository root; every COPY source must be there."""
    copies = [
        arguments
        for stage in _stages()
        for instruction, arguments in stage.instructions
        if instruction in {"COPY", "ADD"} and "--from=" not in arguments
    ]
    assert copies
    for arguments in copies:
        for source in _copy_sources(arguments):
            assert (REPO / source).exists(), f"COPY {source}: no such path"
            assert _dockerignore_allows(source), f"COPY {source}: excluded by .dockerignore"


def test_every_workspace_member_is_copied() -> None:
    sources = {
        source
        for stage in _stages()
        for instruction, arguments in stage.instructions
        if instruction == "COPY"
        for source in _copy_sources(arguments)
    }
    for member in ("packages/taskq-core", "services/api", "services/worker"):
        assert f"{member}/pyproject.toml" in sources
        assert f"{member}/src" in sources
    assert "constraints.txt" in sources


def test_development_tooling_stays_out_of_the_image() -> None:
    """taskq-dev (make run, the local PostgreSQL, bench and test SQL) is for .venv only."""
    text = " ".join(
        arguments for stage in _stages() for _instruction, arguments in stage.instructions
    )
    assert "taskq-dev" not in text
    assert "taskq_dev" not in text
    assert not _dockerignore_allows("packages/taskq-dev/src")
    assert (REPO / "packages" / "taskq-dev" / "pyproject.toml").exists()


def test_builds_with_the_pinned_constraints() -> None:
    runs = " ".join(
        arguments
        for stage in _stages()
        for instruction, arguments in stage.instructions
        if instruction == "RUN"
    )
    assert re.search(r"pip install [^&]*-c constraints\.txt", runs)


def test_final_stage_is_slim_unprivileged_and_without_build_tools() -> None:
    *build_stages, final = _stages()
    assert build_stages, "multi-stage: dependencies are installed in an earlier stage"
    assert "python:3.11-slim" in DOCKERFILE.read_text(encoding="utf-8")
    users = [arguments for instruction, arguments in final.instructions if instruction == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    runs = " ".join(
        arguments for instruction, arguments in final.instructions if instruction == "RUN"
    )
    assert "apt-get install" not in runs
    assert not any(re.search(rf"\b{re.escape(tool)}\b", runs) for tool in BUILD_TOOLS)
    assert any(
        instruction == "COPY" and "--from=build" in arguments
        for instruction, arguments in final.instructions
    )


def test_default_command_is_a_console_script() -> None:
    (_, command) = [item for item in _stages()[-1].instructions if item[0] == "CMD"][-1]
    assert command.startswith("[")
    assert shlex.split(command.strip("[]").replace(",", " "))[0] in PROCESS_COMMANDS


def test_console_scripts_are_installed_where_the_lead_fixed_them() -> None:
    scripts = installed_console_scripts()
    for name, target in PROCESS_COMMANDS.items():
        assert scripts.get(name) == target


def test_make_runs_the_same_commands() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for command in PROCESS_COMMANDS:
        assert f"$(BIN)/{command}" in makefile


def test_image_environment_has_reasons() -> None:
    """ENV in the Dockerfile sets only settings or runtime variables with a stated reason."""
    names = set()
    for stage in _stages():
        for instruction, arguments in stage.instructions:
            if instruction == "ENV":
                names |= {word.split("=", 1)[0] for word in shlex.split(arguments)}
    assert names
    assert names - settings_variables() - set(IMAGE_ENV) == set()
