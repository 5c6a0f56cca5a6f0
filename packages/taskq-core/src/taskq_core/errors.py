"""The one exception tree of taskq: every domain error is a TaskqError.

The class docstring is the default message, so raising a bare subclass still
says something useful; subclasses that carry data format it into the message.
"""

from __future__ import annotations


class TaskqError(Exception):
    """taskq failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class SettingsError(TaskqError):
    """A setting read from the environment is invalid."""

    def __init__(self, variable: str, value: str, reason: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"invalid {variable}={value!r}: {reason}")


class InvalidFieldError(TaskqError):
    """A request field is invalid."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class RequestTooLargeError(InvalidFieldError):
    """The request would store more than the server allows."""


class TooManyTaskTypesError(InvalidFieldError):
    """The server already has as many task types as MAX_TASK_TYPES allows."""


class NotFoundError(TaskqError):
    """The requested resource does not exist."""

    def __init__(self, what: str, key: str, hint: str = "") -> None:
        self.what = what
        self.key = key
        super().__init__(f"{what} {key!r} not found" + (f"; {hint}" if hint else ""))


class DatabaseError(TaskqError):
    """The database refused a statement."""

    def __init__(self, message: str | None = None, *, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class DatabaseUnavailableError(DatabaseError):
    """The database is unreachable; try again shortly."""


class MigrationError(TaskqError):
    """The database schema could not be brought up to date."""


class SchemaMismatchError(TaskqError):
    """The database schema does not match what this code needs."""


class TaskTypeUnavailableError(TaskqError):
    """One task type's queue cannot be used now; the other types are not affected."""

    def __init__(self, task_type: str, reason: str) -> None:
        self.task_type = task_type
        self.reason = reason
        super().__init__(f"task type {task_type!r} unavailable: {reason}")


class IdempotencyConflictError(InvalidFieldError):
    """An idempotency key was reused with a different request."""
