from __future__ import annotations

import pytest

from taskq_core.durations import parse_duration
from taskq_core.errors import SettingsError
from taskq_core.settings import ENVIRONMENT_VARIABLES, Settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1500ms", 1.5),
        ("2m", 120.0),
        ("2m30s", 150.0),
        ("1h", 3600.0),
        ("250us", 0.00025),
        ("0", 0.0),
        ("1.5", 1.5),
        ("0.5s", 0.5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "5 s", "-1s", "1s2", "ms10"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_defaults_are_the_references() -> None:
    settings = Settings.from_env({})
    assert settings.postgres_dsn == "postgres://postgres:postgres@postgres:5432/postgres"
    assert (settings.max_workers, settings.read_ahead, settings.port) == (10, 100, 8080)
    assert (settings.visibility_timeout, settings.timeout) == (30.0, 5.0)
    assert (settings.retry_base_delay, settings.retry_max_delay) == (1.0, 60.0)
    assert (settings.max_retries, settings.dlq_queue_name, settings.log_level) == (
        3,
        "task_dlq",
        "info",
    )


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "MAX_WORKERS": "50",
            "VISIBILITY_TIMEOUT": "2m",
            "TIMEOUT": "1500ms",
            "LOG_LEVEL": "DEBUG",
            "MAX_BODY_SIZE": "1MiB",
            "PORT": " 9000 ",
        }
    )
    assert settings.max_workers == 50
    assert settings.visibility_timeout == 120.0
    assert settings.timeout == 1.5
    assert settings.log_level == "debug"
    assert settings.max_body_size == 1024 * 1024
    assert settings.port == 9000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_WORKERS", "0"),
        ("MAX_WORKERS", "ten"),
        ("PORT", "70000"),
        ("TIMEOUT", "soon"),
        ("TIMEOUT", "0s"),
        ("LOG_LEVEL", "loud"),
        ("DLQ_QUEUE_NAME", "bad-name;"),
        ("MAX_RETRIES", "-1"),
        ("WORKER_PROCESSES", "0"),
        ("WORKER_PROCESSES", "many"),
        ("WORKER_CPU_AFFINITY", "0-3"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


@pytest.mark.parametrize(("value", "processes"), [("auto", 0), (" AUTO ", 0), ("1", 1), ("4", 4)])
def test_worker_processes_is_auto_or_a_count(value: str, processes: int) -> None:
    assert Settings.from_env({"WORKER_PROCESSES": value}).worker_processes == processes
    assert Settings().worker_processes == 0  # auto


def test_cpu_affinity_is_auto_unless_turned_off() -> None:
    assert Settings().worker_cpu_affinity == "auto"
    assert Settings.from_env({"WORKER_CPU_AFFINITY": "OFF"}).worker_cpu_affinity == "off"


def test_every_field_has_a_variable() -> None:
    assert "POSTGRES_DSN" in ENVIRONMENT_VARIABLES
    assert len(ENVIRONMENT_VARIABLES) == len(set(ENVIRONMENT_VARIABLES))


def test_rate_slot_margin_is_a_duration() -> None:
    assert Settings().rate_slot_margin == 0.03
    assert Settings.from_env({"RATE_SLOT_MARGIN": "1s"}).rate_slot_margin == 1.0
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RATE_SLOT_MARGIN": "-1s"})
    assert caught.value.variable == "RATE_SLOT_MARGIN"


@pytest.mark.parametrize(
    ("environ", "read_ahead"),
    [
        ({}, 100),
        ({"MAX_QUEUE_BUFFER": "auto", "MAX_WORKERS": "20"}, 100),
        ({"MAX_WORKERS": "100"}, 400),
        ({"MAX_WORKERS": "100", "MAX_QUEUE_BUFFER": "50"}, 50),
        ({"MAX_WORKERS": "2", "MAX_QUEUE_BUFFER": "1"}, 1),
    ],
)
def test_the_read_ahead_grows_with_the_threads_unless_set(
    environ: dict[str, str], read_ahead: int
) -> None:
    assert Settings.from_env(environ).read_ahead == read_ahead


@pytest.mark.parametrize("raw", ["0", "-1", "many", "1.5"])
def test_a_read_ahead_that_is_neither_auto_nor_positive_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="MAX_QUEUE_BUFFER"):
        Settings.from_env({"MAX_QUEUE_BUFFER": raw})
