"""loguru set-up: one JSON object per line in production, readable lines on a terminal.

Context (task_id, message_id, task_type, attempt, ...) travels in loguru's
`extra` via `logger.bind()` and lands as top-level JSON keys.

Credentials never reach the stream, whatever the format: every sink writes
through one `Redactor` (taskq_core.redaction), applied to the finished text
(message, context, exception text and traceback alike), and `diagnose` is off
so no traceback shows local variables.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

import msgspec
from loguru import logger

from taskq_core.redaction import Redactor, dsn_password, redact_headers

if TYPE_CHECKING:
    from loguru import Message, Record

    from taskq_core.settings import Settings

_TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message} <dim>{extra}</dim>"
)


def redactor_for(settings: Settings) -> Redactor:
    """The redactor of a process with these settings: it knows the settings' secrets."""
    return Redactor.of(
        dsn_password(settings.postgres_dsn), settings.secrets_key, *settings.api_keys
    )


def _redact_context(record: Record) -> None:
    """Header mappings in the context lose their credential values before any sink sees them."""
    if "headers" in record["extra"]:
        record["extra"]["headers"] = redact_headers(record["extra"]["headers"])


def _json_sink(stream: TextIO, redactor: Redactor) -> Callable[[Message], None]:
    encoder = msgspec.json.Encoder()

    def write(message: Message) -> None:
        record = message.record
        line: dict[str, object] = {
            "ts": record["time"].isoformat(),
            "level": record["level"].name.lower(),
            "msg": redactor.text(record["message"]),
            "logger": record["name"],
        }
        for key, value in record["extra"].items():
            line[key] = _redacted(value, redactor)
        exception = record["exception"]
        if exception is not None:
            line["exception"] = redactor.text(str(exception.value))
            # The frames only (what failed where), never local variables.
            line["traceback"] = redactor.text(
                "".join(
                    traceback.format_exception(exception.type, exception.value, exception.traceback)
                )
            )
        stream.write(encoder.encode(line).decode() + "\n")
        stream.flush()

    return write


def _redacted(value: object, redactor: Redactor) -> object:
    """A context value with the text it holds, at any depth, redacted; other values as they are."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redactor) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item, redactor) for item in value]
    return value


def _text_sink(stream: TextIO, redactor: Redactor) -> Callable[[Message], None]:
    def write(message: Message) -> None:
        # `message` is the whole formatted line, the traceback included.
        stream.write(redactor.text(str(message)))
        stream.flush()

    return write


class LoguruHandler(logging.Handler):
    """Hands standard-library log records (granian's, psycopg's) to loguru.

    So a process writes one format only: with LOG_FORMAT=json even the server's
    own "Started worker" lines are JSON objects.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno

        def named(entry: Record) -> None:
            entry["name"] = record.name  # the library's logger, not this module

        logger.patch(named).opt(exception=record.exc_info).log(level, record.getMessage())


def stdlib_logging_config() -> dict[str, object]:
    """A logging.config.dictConfig fragment sending granian's two loggers to loguru."""
    handler = {"()": f"{__name__}.LoguruHandler"}
    return {"handlers": {"console": handler, "access": dict(handler)}}


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Route loguru to `stream` (stderr) in the format and level `settings` ask for."""
    target = stream or sys.stderr
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not target.isatty()
    )
    redactor = redactor_for(settings)
    logger.remove()
    logger.configure(patcher=_redact_context)
    level = settings.log_level_name
    # diagnose off in every format: it prints the local variables of each
    # traceback frame, and those hold header values and URL passwords.
    if use_json:
        logger.add(_json_sink(target, redactor), level=level, format="{message}", diagnose=False)
    else:
        logger.add(
            _text_sink(target, redactor),
            level=level,
            format=_TEXT_FORMAT,
            colorize=target.isatty(),
            diagnose=False,
        )
    # Libraries' warnings (a psycopg pool losing connections) join the same stream.
    logging.basicConfig(handlers=[LoguruHandler()], level=logging.WARNING, force=True)
    # An error nothing caught would otherwise be printed by Python itself, in
    # neither format and unredacted (a driver error quoting the DSN's password).
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logger.opt(exception=(kind, error, trace)).critical("uncaught error: {}", kind.__name__)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return  # what threading's own hook ignores too
    thread = args.thread.name if args.thread is not None else "?"
    logger.opt(exception=(args.exc_type, args.exc_value, args.exc_traceback)).critical(
        "uncaught error in thread {}: {}", thread, args.exc_type.__name__
    )
