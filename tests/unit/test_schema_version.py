"""Schema compatibility: behind refuses, ahead runs only over backward-compatible migrations."""

from __future__ import annotations

import pytest

from taskq_core.errors import SchemaMismatchError
from taskq_core.migrate import Migration, bundled_migrations
from taskq_core.schema_version import AppliedMigration, check_compatible

KNOWN = [
    Migration(1, "initial", "CREATE TABLE a ();"),
    Migration(2, "index", "-- compatible: backward\n-- why\nCREATE INDEX i ON a ();"),
]


def _applied(*versions: tuple[int, str, bool]) -> list[AppliedMigration]:
    return [AppliedMigration(version, name, flag) for version, name, flag in versions]


def test_the_marker_is_read_from_the_leading_comments_only() -> None:
    assert KNOWN[1].backward_compatible
    assert not KNOWN[0].backward_compatible
    assert not Migration(3, "x", "SELECT 1;\n-- compatible: backward\n").backward_compatible


def test_an_up_to_date_database_passes() -> None:
    check_compatible(_applied((1, "initial", False), (2, "index", True)), KNOWN)


def test_behind_names_the_missing_migration_and_the_command() -> None:
    with pytest.raises(SchemaMismatchError) as raised:
        check_compatible(_applied((1, "initial", False)), KNOWN)
    message = str(raised.value)
    assert "behind" in message
    assert "0002_index" in message
    assert "taskq-migrate" in message
    assert "\n" not in message


def test_ahead_over_backward_compatible_migrations_runs() -> None:
    check_compatible(
        _applied((1, "initial", False), (2, "index", True), (3, "new_column", True)), KNOWN
    )


def test_ahead_over_an_unmarked_migration_refuses() -> None:
    with pytest.raises(SchemaMismatchError) as raised:
        check_compatible(
            _applied((1, "initial", False), (2, "index", True), (3, "rename", False)), KNOWN
        )
    assert "ahead" in str(raised.value)
    assert "0003_rename" in str(raised.value)


def test_the_bundled_migrations_have_unique_versions_in_order() -> None:
    versions = [migration.version for migration in bundled_migrations()]
    assert versions == sorted(set(versions))
