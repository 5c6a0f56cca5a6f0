"""One typed settings object per process, read from environment variables.

The names and defaults of the reference (pgmq-taskq) are kept exactly; the rest
is additive. Nothing is read at import time: each process calls
`Settings.from_env()` once in its composition root and passes the result down.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from taskq_core.durations import parse_duration
from taskq_core.errors import SettingsError

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "text")
DB_POOLERS = ("none", "transaction")
CPU_AFFINITIES = ("auto", "off")
READ_AHEAD_PER_THREAD = 4  # MAX_QUEUE_BUFFER=auto: messages read ahead per worker thread
MIN_READ_AHEAD = 100  # ... and never fewer: the reference's buffer
MAX_RESPONSE_CAPTURE = 64 * 1024
"""Bytes: every status row may carry this much, so it stays a preview, not storage."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting taskq reads; durations are in seconds."""

    postgres_dsn: str = "postgres://postgres:postgres@postgres:5432/postgres"
    max_workers: int = 10
    # Messages a worker process reads ahead of its threads; 0 is `auto` (read_ahead).
    max_queue_buffer: int = 0
    visibility_timeout: float = 30.0
    port: int = 8080
    max_retries: int = 3
    dlq_queue_name: str = "task_dlq"
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    timeout: float = 5.0
    log_level: str = "info"
    # Beyond the reference:
    # A service listens on all interfaces, as the reference does.
    host: str = "0.0.0.0"  # noqa: S104
    log_format: str = "auto"
    api_workers: int = 1
    metrics_port: int = 9090
    shutdown_grace_period: float = 25.0
    # How late after its rate token's slot a call may still start (worker):
    # later, it goes back to the queue for a fresh token rather than out
    # bunched with calls that are on time (issue 13).
    rate_slot_margin: float = 0.03
    max_payloads: int = 10_000
    max_body_size: int = 10 * 1024 * 1024
    # Bounds on what one request may cost (SECURITY.md): headers, stored bytes, task types.
    max_headers_size: int = 32 * 1024
    max_request_storage: int = 64 * 1024 * 1024
    max_task_types: int = 1000
    db_pool_size: int = 10
    # Database limits (taskq_core.database): a frozen database answers 503, never a hang.
    db_connect_timeout: float = 3.0
    db_statement_timeout: float = 5.0
    db_idle_in_transaction_timeout: float = 30.0
    db_pool_timeout: float = 3.0
    db_tcp_user_timeout: float = 10.0
    db_keepalives_idle: float = 10.0
    db_keepalives_interval: float = 5.0
    db_keepalives_count: int = 3
    # What sits between this process and PostgreSQL (docs/scaling.md): `transaction`
    # for a transaction-mode pooler such as PgBouncer, whose server connections
    # change under the client between transactions. Then nothing session-bound is
    # sent: no prepared statements, no `options` startup parameter (the server-side
    # timeouts must come from the role or the database). The worker refuses it.
    db_pooler: str = "none"
    # Worker: let the concurrency tuner pick how many of MAX_WORKERS call at once.
    # Off by default: against targets answering in 2-20 ms it cost 15-53% of the
    # calls/s of fixed threads (docs/benchmarks.md, delay sweep).
    adaptive_concurrency: bool = False
    # Worker: processes per replica (each with MAX_WORKERS threads); 0 means
    # `auto`, the CPUs the container may use (taskq_worker.cpus).
    worker_processes: int = 0
    # Worker: `auto` keeps each process's threads on one CPU (taskq_worker.affinity:
    # the GIL passed between cores cost one process 20-40% of its calls/s); `off`
    # leaves placement to the kernel.
    worker_cpu_affinity: str = "auto"
    # Security (SECURITY.md): API keys, metrics exposure, outbound (egress) policy.
    api_keys: tuple[str, ...] = ()
    metrics_public: bool = False
    egress_block_private: bool = False
    egress_allowlist: tuple[str, ...] = ()
    follow_redirects: bool = True
    # Worker supervision (docs/deploying.md): a thread that fails this many
    # times within the window takes the process down so the orchestrator
    # restarts it; /health/live fails when the fetcher or recorder has not
    # moved for LIVENESS_TIMEOUT.
    thread_restart_limit: int = 5
    thread_restart_window: float = 60.0
    liveness_timeout: float = 60.0
    # Retention (worker): how long finished status rows and dead letters are
    # kept; None keeps them for ever.
    status_retention: float | None = 7 * 86400.0
    dlq_retention: float | None = None
    # Issue 15: how long an Idempotency-Key of POST /tasks is remembered.
    idempotency_ttl: float = 24 * 3600.0
    # Issue 15: how far ahead a delay or not_before may hold a message.
    max_schedule_ahead: float = 30 * 86400.0
    # Issue 15: bytes of each reply body kept in the status row (0: none).
    response_capture_bytes: int = 4096
    # Issue 15: the key that seals task types' signing secrets at rest (empty: no signing).
    secrets_key: str = ""
    # Flow control (design decision 11): a 429 snoozes a message without
    # spending an attempt, at most MAX_SNOOZES times, each for at most
    # MAX_SNOOZE_DELAY seconds whatever Retry-After asks.
    max_snoozes: int = 20
    max_snooze_delay: float = 3600.0
    # Per-host circuit breaker (taskq_core.circuits): at BREAKER_MIN_CALLS calls
    # within BREAKER_WINDOW of which BREAKER_FAILURE_RATIO failed, a host's calls
    # stop for BREAKER_COOLDOWN, then BREAKER_PROBES successful probes close it.
    breaker_enabled: bool = True
    breaker_failure_ratio: float = 0.5
    breaker_min_calls: int = 20
    breaker_window: float = 60.0
    breaker_cooldown: float = 30.0
    breaker_probes: int = 3

    def __repr__(self) -> str:
        # Never print credentials: the DSN's password and the API keys.
        return f"Settings(port={self.port}, max_workers={self.max_workers}, ...)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `environ` (default `os.environ`); SettingsError names a bad variable."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            variable, raw = _lookup(env, field.name)
            if raw is None or raw.strip() == "":
                continue
            parse = _PARSERS[field.name]
            try:
                values[field.name] = parse(raw.strip())
            except ValueError as error:
                shown = "(hidden)" if field.name in _SECRET_FIELDS else raw
                raise SettingsError(variable, shown, str(error)) from error
        return cls(**values)  # type: ignore[arg-type]

    @property
    def read_ahead(self) -> int:
        """How many messages a worker process may hold ready for its threads.

        MAX_QUEUE_BUFFER, or with `auto` READ_AHEAD_PER_THREAD per thread and
        at least 100 (the reference's buffer, which `auto` keeps at the default
        10 threads). Why it grows with the threads: the fetcher reads while
        every thread competes with it for the GIL, and with 100 threads and a
        buffer of 100 a read took 10-260 ms (median ~40) while the threads
        emptied the buffer in ~35: threads found it empty in 2 of 3 takes.
        Celery (prefetch multiplier 4) and Dramatiq (2 per thread) size their
        prefetch by concurrency for the same reason.
        """
        per_thread = READ_AHEAD_PER_THREAD * self.max_workers
        return self.max_queue_buffer or max(MIN_READ_AHEAD, per_thread)

    @property
    def log_level_name(self) -> str:
        """The level as loguru names it."""
        return {"warn": "WARNING"}.get(self.log_level, self.log_level.upper())


_SECRET_FIELDS = frozenset({"api_keys", "secrets_key", "postgres_dsn"})
"""Settings whose value an error message must not repeat."""
_ALIASES = {"api_keys": ("API_KEYS", "TASKQ_API_KEYS")}


def _lookup(env: Mapping[str, str], name: str) -> tuple[str, str | None]:
    """The variable that sets field `name` and its value (the first alias that is set)."""
    for variable in _ALIASES.get(name, (name.upper(),)):
        if env.get(variable, "").strip():
            return variable, env[variable]
    return name.upper(), None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _auto_or_positive(raw: str) -> int:
    """`auto` (0: the setting works its value out) or a whole number of at least 1."""
    if raw.strip().lower() == "auto":
        return 0
    try:
        return _positive_int(raw)
    except ValueError:
        raise ValueError("must be auto or a whole number of at least 1") from None


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number of at least 0")
    return value


def _positive_duration(raw: str) -> float:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError("must be a positive duration such as 500ms, 30s or 2m")
    return value


def _non_negative_duration(raw: str) -> float:
    return parse_duration(raw)


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _queue_name(raw: str) -> str:
    if not raw.replace("_", "").isalnum() or len(raw) > 47:
        raise ValueError("must be letters, digits and underscores, at most 47 characters")
    return raw.lower()


def _retention(raw: str) -> float | None:
    if raw.lower() in {"never", "forever", "off"}:
        return None
    return _positive_duration(raw)


def _ratio(raw: str) -> float:
    value = float(raw)
    if not 0.0 < value <= 1.0:  # also refuses nan
        raise ValueError("must be a number above 0 and at most 1, such as 0.5")
    return value


def _text(raw: str) -> str:
    return raw


def _byte_size(raw: str) -> int:
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "b": 1}
    lowered = raw.lower()
    for suffix, factor in units.items():
        if lowered.endswith(suffix):
            return _positive_int(lowered.removesuffix(suffix).strip()) * factor
    return _positive_int(lowered)


def _capture_size(raw: str) -> int:
    if raw.strip() == "0":
        return 0
    value = _byte_size(raw)
    if value > MAX_RESPONSE_CAPTURE:
        raise ValueError(f"must be at most {MAX_RESPONSE_CAPTURE} bytes (64KiB)")
    return value


def _secrets_key(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    return raw


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _word_list(raw: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in raw.split(",") if word.strip())


def _api_keys(raw: str) -> tuple[str, ...]:
    """Comma-separated keys, or the path of a file holding them (one per line, or commas)."""
    if raw.startswith(("/", "./")):
        try:
            with open(raw, encoding="utf-8") as keys_file:
                raw = keys_file.read().replace("\n", ",")
        except OSError as error:
            raise ValueError(f"cannot read the key file: {error.strerror}") from error
    keys = _word_list(raw)
    if not keys:
        raise ValueError("no keys given")
    if any(len(key) < 16 for key in keys):
        raise ValueError("every key must be at least 16 characters long")
    return keys


_PARSERS: dict[str, Callable[[str], object]] = {
    "postgres_dsn": _text,
    "max_workers": _positive_int,
    "max_queue_buffer": _auto_or_positive,
    "visibility_timeout": _positive_duration,
    "port": _port,
    "max_retries": _non_negative_int,
    "dlq_queue_name": _queue_name,
    "retry_base_delay": _non_negative_duration,
    "retry_max_delay": _positive_duration,
    "timeout": _positive_duration,
    "log_level": _choice(LOG_LEVELS),
    "host": _text,
    "log_format": _choice(LOG_FORMATS),
    "api_workers": _positive_int,
    "metrics_port": _port,
    "shutdown_grace_period": _non_negative_duration,
    "rate_slot_margin": _non_negative_duration,
    "max_payloads": _positive_int,
    "max_body_size": _byte_size,
    "max_headers_size": _byte_size,
    "max_request_storage": _byte_size,
    "max_task_types": _positive_int,
    "db_pool_size": _positive_int,
    "db_connect_timeout": _positive_duration,
    "db_statement_timeout": _positive_duration,
    "db_idle_in_transaction_timeout": _positive_duration,
    "db_pool_timeout": _positive_duration,
    "db_tcp_user_timeout": _positive_duration,
    "db_keepalives_idle": _positive_duration,
    "db_keepalives_interval": _positive_duration,
    "db_keepalives_count": _positive_int,
    "db_pooler": _choice(DB_POOLERS),
    "adaptive_concurrency": _boolean,
    "worker_processes": _auto_or_positive,
    "worker_cpu_affinity": _choice(CPU_AFFINITIES),
    "api_keys": _api_keys,
    "metrics_public": _boolean,
    "egress_block_private": _boolean,
    "egress_allowlist": _word_list,
    "follow_redirects": _boolean,
    "thread_restart_limit": _positive_int,
    "thread_restart_window": _positive_duration,
    "liveness_timeout": _positive_duration,
    "status_retention": _retention,
    "dlq_retention": _retention,
    "idempotency_ttl": _positive_duration,
    "max_schedule_ahead": _positive_duration,
    "response_capture_bytes": _capture_size,
    "secrets_key": _secrets_key,
    "max_snoozes": _non_negative_int,
    "max_snooze_delay": _positive_duration,
    "breaker_enabled": _boolean,
    "breaker_failure_ratio": _ratio,
    "breaker_min_calls": _positive_int,
    "breaker_window": _positive_duration,
    "breaker_cooldown": _positive_duration,
    "breaker_probes": _positive_int,
}

ENVIRONMENT_VARIABLES = tuple(
    variable
    for field in dataclasses.fields(Settings)
    for variable in _ALIASES.get(field.name, (field.name.upper(),))
)
"""Every variable the settings read: deploy manifests are checked against this list."""
