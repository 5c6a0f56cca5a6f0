"""LISTEN for new work on a dedicated connection, so an idle worker reacts within milliseconds.

A connection that also ran queries could lose notifications between
`notifies()` calls (psycopg issue 962), so this one only listens.
"""

from __future__ import annotations

import threading

import backoff
from loguru import logger

from taskq_core.database import connect, database_errors
from taskq_core.errors import DatabaseUnavailableError
from taskq_core.queries import QUERIES
from taskq_core.settings import Settings
from taskq_worker.health import DatabaseHealth
from taskq_worker.wakeups import Wakeups


class Listener:
    def __init__(
        self, settings: Settings, wakeups: Wakeups, health: DatabaseHealth, stop: threading.Event
    ) -> None:
        self._settings = settings
        self._wakeups = wakeups
        self._health = health
        self._stop = stop

    def run(self) -> None:
        while not self._stop.is_set():
            self._listen_with_retry()

    def _listen_with_retry(self) -> None:
        @backoff.on_exception(
            backoff.expo,
            DatabaseUnavailableError,
            max_value=5,
            giveup=lambda _error: self._stop.is_set(),
            on_backoff=lambda details: self._health.mark_down(details["exception"]),
            logger=None,
        )
        def listen() -> None:
            with connect(self._settings, name="taskq-listener") as conn, database_errors():
                conn.execute(QUERIES["listen_work"])
                self._health.mark_up()
                self._wakeups.wake_all()
                while not self._stop.is_set():
                    for notification in conn.notifies(timeout=0.5):
                        self._wakeups.wake(notification.payload)

        try:
            listen()
        except DatabaseUnavailableError as error:
            logger.debug("listener stopped while the database was unavailable: {}", error)
