"""Settings for a process entry point: loaded and checked, or one clear line and exit 2."""

from __future__ import annotations

import sys
from typing import NoReturn

from psycopg.conninfo import conninfo_to_dict

from taskq_core.errors import SettingsError
from taskq_core.settings import Settings


def load_settings_or_exit() -> Settings:
    """Settings, or one clear line on stderr and exit status 2 (no traceback)."""
    try:
        settings = Settings.from_env()
        check_dsn(settings.postgres_dsn)
    except SettingsError as error:
        _exit_with(f"taskq: configuration error: {error}")
    return settings


def check_dsn(dsn: str) -> None:
    """SettingsError unless libpq can parse `dsn`, checked here so it fails before any connect.

    libpq's message quotes the offending part (a password, perhaps): only the words
    before the quote are kept, and the value is never shown.
    """
    try:
        conninfo_to_dict(dsn)
    except Exception as error:  # psycopg.ProgrammingError; anything else means the same
        reason = str(error).split('"')[0].split(":")[0].strip() or "unreadable"
        raise SettingsError(
            "POSTGRES_DSN",
            "(hidden)",
            f"is not a valid PostgreSQL connection string (URL or key=value): {reason}",
        ) from None


def _exit_with(line: str) -> NoReturn:
    # Logging is not configured before settings exist.
    print(line, file=sys.stderr)
    raise SystemExit(2)
