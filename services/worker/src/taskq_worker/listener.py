"""LISTEN for new work on a dedicated connection, so an idle worker reacts within milliseconds.

A connection that also ran queries could lose notifications between
`notifies()` calls (psycopg issue 962), so this one only listens. Each
(re)connection first runs `on_connect` (the schema check): a database that came
back may have been migrated meanwhile. Losing the database is waited out with
backoff; any other error propagates to the supervision, which restarts this thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from taskq_core.database import connect, database_errors
from taskq_core.errors import DatabaseUnavailableError
from taskq_core.queries import QUERIES
from taskq_core.queue_names import CONFIG_CHANGED
from taskq_core.settings import Settings
from taskq_worker.health import DatabaseHealth
from taskq_worker.reconnect import Backoff
from taskq_worker.wakeups import Wakeups


class Listener:
    def __init__(
        self,
        settings: Settings,
        wakeups: Wakeups,
        health: DatabaseHealth,
        stop: threading.Event,
        *,
        on_connect: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._wakeups = wakeups
        self._health = health
        self._stop = stop
        self._on_connect = on_connect

    def run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                self._listen(backoff)
            except DatabaseUnavailableError as error:
                self._health.mark_down(error)
                self._stop.wait(backoff.next())

    def _listen(self, backoff: Backoff) -> None:
        with connect(self._settings, name="taskq-listener") as conn, database_errors():
            self._on_connect()
            conn.execute(QUERIES["listen_work"])
            self._health.mark_up()
            backoff.reset()
            self._wakeups.wake_all()
            while not self._stop.is_set():
                for notification in conn.notifies(timeout=0.5):
                    if notification.payload == CONFIG_CHANGED:
                        self._wakeups.wake_all()  # re-reads the task types at once
                    else:
                        self._wakeups.wake(notification.payload)
