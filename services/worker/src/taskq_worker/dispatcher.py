"""The bounded hand-off between the fetcher and the executor threads, fair across task types.

Messages wait in one deque per task type. An executor takes from the types in
turn, and no type may occupy more than its fair share of the threads while
other types have work: a type whose target is slow cannot starve a fast one.
The fetcher asks `room_for(type)` before reading, so memory stays bounded by
the buffer size however long the backlog in the database is.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from taskq_core.deliveries import Delivery


class Dispatcher:
    def __init__(self, *, threads: int, buffer_size: int) -> None:
        self._threads = threads
        self._buffer_size = buffer_size
        self._waiting: dict[str, deque[Delivery]] = {}
        self._running: dict[str, int] = {}
        self._turn: deque[str] = deque()
        self._lock = threading.Lock()
        # Two conditions on one lock so an executor finishing wakes one executor
        # and a message taken wakes the fetcher, never a herd of threads.
        self._work = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._closed = False

    def room_for(self, task_type: str) -> int:
        """How many more messages of `task_type` may be buffered now.

        Zero until the type's buffer has drained to half its share: refilling
        in large reads keeps database round trips per message low.
        """
        with self._lock:
            if self._closed:
                return 0
            share = math.ceil(self._buffer_size / self._active_types(including=task_type))
            waiting = len(self._waiting.get(task_type, ()))
            return share - waiting if waiting <= share // 2 else 0

    def put(self, task_type: str, deliveries: list[Delivery]) -> None:
        with self._lock:
            queue = self._waiting.get(task_type)
            if queue is None:
                queue = self._waiting[task_type] = deque()
                self._turn.append(task_type)
            queue.extend(deliveries)
            self._work.notify(len(deliveries))

    def take(self, timeout: float) -> Delivery | None:
        """The next message to call, or None after `timeout` seconds (or once closed and empty)."""
        with self._lock:
            delivery = self._next()
            if delivery is None and not self._closed:
                self._work.wait(timeout)
                delivery = self._next()
            return delivery

    def done(self, task_type: str) -> None:
        """An executor finished a call of `task_type`."""
        with self._lock:
            self._running[task_type] -= 1
            # A thread share was freed: a waiting executor may now take a capped type.
            self._work.notify()

    def wait_for_room(self, timeout: float) -> None:
        with self._lock:
            self._room.wait(timeout)

    def close(self) -> list[Delivery]:
        """Stop handing out work; return the buffered messages that never started."""
        with self._lock:
            self._closed = True
            unstarted = [delivery for queue in self._waiting.values() for delivery in queue]
            self._waiting.clear()
            self._turn.clear()
            self._work.notify_all()
            self._room.notify_all()
            return unstarted

    def in_flight(self) -> int:
        with self._lock:
            return sum(self._running.values())

    def buffered(self) -> int:
        with self._lock:
            return sum(len(queue) for queue in self._waiting.values())

    def _active_types(self, including: str) -> int:
        active = {name for name, queue in self._waiting.items() if queue}
        active.update(name for name, count in self._running.items() if count)
        active.add(including)
        return len(active)

    def _next(self) -> Delivery | None:
        """Round-robin over types with waiting messages, skipping a type over its thread share."""
        if not self._turn:
            return None
        cap = max(1, math.ceil(self._threads / self._demanding_types()))
        for _ in range(len(self._turn)):
            task_type = self._turn[0]
            self._turn.rotate(-1)
            queue = self._waiting[task_type]
            if queue and self._running.get(task_type, 0) < cap:
                self._running[task_type] = self._running.get(task_type, 0) + 1
                delivery = queue.popleft()
                if len(queue) <= self._buffer_size // 2:
                    # Below the refill mark: the fetcher may read this type again.
                    self._room.notify()
                return delivery
        return None

    def _demanding_types(self) -> int:
        demanding = sum(
            1 for name, queue in self._waiting.items() if queue or self._running.get(name, 0)
        )
        return max(1, demanding)
