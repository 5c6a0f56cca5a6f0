"""The console's own injected values (the API's repositories come from taskq_api.dependencies)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from taskq_core.repository.console import ConsoleRepository

Console: TypeAlias = NamedDependency[ConsoleRepository]
"""The `console` dependency: the overview chart's outcome counts."""
ApiKeys: TypeAlias = NamedDependency[tuple[str, ...]]
"""The `api_keys` dependency: the keys the login form accepts."""
