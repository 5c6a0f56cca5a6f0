"""LISTEN for new work on a dedicated connection, so an idle worker reacts within milliseconds.

A connection that also ran queries could lose notifications between
`notifies()` calls (psycopg issue 962), so this one only listens. Between
notifications the thread sleeps in a selector on the connection's socket and on
a wake-up socket that `interrupt()` writes to, with no timeout: psycopg's own
`notifies(timeout=...)` polls every 0.1 s, the idle worker's largest cost
(~0.1% of a core per process). A connection that dies makes its socket
readable, so an outage is still seen at once (keepalives bound a silent one). Each
(re)connection first runs `on_connect` (the schema check): a database that came
back may have been migrated meanwhile. Losing the database is waited out with
backoff; any other error propagates to the supervision, which restarts this thread.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
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
        # While run() runs: interrupt() writes to it to wake the selector at once.
        self._wake: tuple[socket.socket, socket.socket] | None = None

    def interrupt(self) -> None:
        """Wake the thread so it sees the stop event now (called once the stop is set)."""
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                wake[1].send(b"\0")

    def run(self) -> None:
        self._wake = socket.socketpair()
        try:
            backoff = Backoff()
            while not self._stop.is_set():
                try:
                    self._listen(backoff, self._wake[0])
                except DatabaseUnavailableError as error:
                    self._health.mark_down(error)
                    self._stop.wait(backoff.next())
        finally:
            for end in self._wake:
                end.close()

    def _listen(self, backoff: Backoff, woken: socket.socket) -> None:
        with connect(self._settings, name="taskq-listener") as conn, database_errors():
            self._on_connect()
            conn.execute(QUERIES["listen_work"])
            self._health.mark_up()
            backoff.reset()
            self._wakeups.wake_all()
            # A selector, not select(): a busy process may hold descriptors past 1024.
            with selectors.DefaultSelector() as readable:
                readable.register(conn.fileno(), selectors.EVENT_READ)
                readable.register(woken, selectors.EVENT_READ)
                while not self._stop.is_set():
                    # timeout=0: only what has arrived (and what the LISTEN itself received).
                    for notification in conn.notifies(timeout=0):
                        if notification.payload == CONFIG_CHANGED:
                            self._wakeups.wake_all()  # re-reads the task types at once
                        else:
                            self._wakeups.wake(notification.payload)
                    readable.select()
