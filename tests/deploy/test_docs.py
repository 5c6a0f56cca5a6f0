"""docs/deploying.md names only files that exist and variables that the settings read."""

from __future__ import annotations

import re

from tests.deploy.support import REPO, TASKQ_PROCESS_EXTRA_ENV, settings_variables

GUIDE = REPO / "docs" / "deploying.md"


def test_named_files_exist() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    paths = set(re.findall(r"(?<![\w/.])((?:deploy|tests|docs)/[\w./-]*[\w/])", text))
    paths |= set(re.findall(r"(?<![\w/.-])(docker-compose\.yml|constraints\.txt)", text))
    assert "deploy/k8s/components/keda/" in paths
    missing = sorted(path for path in paths if not (REPO / path).exists())
    assert missing == []


def test_named_variables_are_read_by_the_settings() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    variables = set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text))
    assert "MAX_WORKERS" in variables
    assert variables - settings_variables() - set(TASKQ_PROCESS_EXTRA_ENV) == set()
