"""The libpq parameters every taskq connection gets from the DB_* settings."""

from __future__ import annotations

from taskq_core.database import DatabaseLimits, connection_kwargs
from taskq_core.settings import Settings


def test_limits_come_from_settings_and_keep_the_dsn_options() -> None:
    settings = Settings.from_env(
        {"DB_STATEMENT_TIMEOUT": "2s", "DB_CONNECT_TIMEOUT": "1s", "DB_TCP_USER_TIMEOUT": "1500ms"}
    )
    limits = DatabaseLimits.from_settings(settings)
    assert limits.response_timeout == 3.0
    kwargs = connection_kwargs(
        "postgresql://u@h/db?options=-c%20search_path%3Dx", limits, application_name="t"
    )
    assert kwargs["options"] == (
        "-c search_path=x -c statement_timeout=2000 -c idle_in_transaction_session_timeout=30000"
    )
    assert kwargs["connect_timeout"] == 2  # libpq reads 1 as 2: say so
    assert kwargs["tcp_user_timeout"] == 1500
    assert (kwargs["keepalives"], kwargs["keepalives_idle"], kwargs["keepalives_count"]) == (
        1,
        10,
        3,
    )


def test_a_transaction_pooler_gets_no_prepared_statements_and_no_startup_options() -> None:
    settings = Settings.from_env({"DB_POOLER": "transaction", "DB_STATEMENT_TIMEOUT": "2s"})
    limits = DatabaseLimits.from_settings(settings)
    kwargs = connection_kwargs("postgresql://u@h/db", limits, application_name="t")
    assert "prepare_threshold" in kwargs
    assert kwargs["prepare_threshold"] is None  # psycopg: never prepare
    assert "options" not in kwargs  # PgBouncer: "unsupported startup parameter: options"
    assert limits.response_timeout == 3.0  # the client-side deadline stays
    direct = connection_kwargs(
        "postgresql://u@h/db", DatabaseLimits.from_settings(Settings()), application_name="t"
    )
    assert "prepare_threshold" not in direct
