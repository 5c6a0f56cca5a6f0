"""Settings for a process entry point: loaded and checked, or one clear line and exit 2."""

from __future__ import annotations

import sys
from typing import NoReturn

from psycopg.conninfo import conninfo_to_dict

from taskq_core.errors import SettingsError
from taskq_core.settings import Settings


def load_settings_or_exit(*, holds_a_session: str | None = None) -> Settings:
    """Settings, or one clear line on stderr and exit status 2 (no traceback).

    `holds_a_session` names a process that needs a PostgreSQL session of its own
    (LISTEN, session advisory locks): it refuses DB_POOLER=transaction, under
    which the session changes between transactions (docs/scaling.md).
    """
    try:
        settings = Settings.from_env()
        check_dsn(settings.postgres_dsn)
        if holds_a_session:
            check_session_kept(settings, holds_a_session)
    except SettingsError as error:
        _exit_with(f"taskq: configuration error: {error}")
    return settings


def check_session_kept(settings: Settings, process: str) -> None:
    """SettingsError if `process`, needing a session of its own, is set for a transaction pooler."""
    if settings.db_pooler == "transaction":
        raise SettingsError(
            "DB_POOLER",
            settings.db_pooler,
            f"{process} holds a PostgreSQL session (LISTEN, session advisory locks), "
            "which a transaction-mode pooler does not keep: point its POSTGRES_DSN at "
            "PostgreSQL or a session-mode pool, and leave DB_POOLER unset (docs/scaling.md)",
        )


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
