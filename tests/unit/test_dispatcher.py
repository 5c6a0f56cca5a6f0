from __future__ import annotations

import threading
import time

from taskq_core.deliveries import Delivery
from taskq_core.status import TaskStatus
from taskq_worker.dispatcher import Dispatcher


def delivery(task_type: str, message_id: int) -> Delivery:
    return Delivery(f"q_{task_type}", message_id, task_type, "{}", None, 0, TaskStatus.PENDING)


def test_room_is_shared_between_active_types() -> None:
    dispatcher = Dispatcher(threads=4, buffer_size=10)
    assert dispatcher.room_for("a") == 10
    dispatcher.put("a", [delivery("a", n) for n in range(10)])
    assert dispatcher.room_for("a") == 0
    # A second type still gets its share although the buffer is full of the first.
    assert dispatcher.room_for("b") == 5


def test_take_alternates_between_types() -> None:
    dispatcher = Dispatcher(threads=10, buffer_size=100)
    dispatcher.put("a", [delivery("a", n) for n in range(3)])
    dispatcher.put("b", [delivery("b", n) for n in range(3)])
    taken = [dispatcher.take(0.01) for _ in range(4)]
    assert sorted(d.task_type for d in taken if d) == ["a", "a", "b", "b"]


def test_a_slow_type_cannot_hold_every_thread() -> None:
    dispatcher = Dispatcher(threads=4, buffer_size=100)
    dispatcher.put("slow", [delivery("slow", n) for n in range(50)])
    running = [dispatcher.take(0.01) for _ in range(4)]
    assert all(d is not None and d.task_type == "slow" for d in running)
    # All four threads are busy with the slow type; a fast type arrives.
    dispatcher.put("fast", [delivery("fast", n) for n in range(5)])
    dispatcher.done(running[0])  # type: ignore[arg-type]
    dispatcher.done(running[1])  # type: ignore[arg-type]
    # With two types demanding, each may hold at most half the threads.
    nxt = [dispatcher.take(0.01), dispatcher.take(0.01)]
    assert [d.task_type for d in nxt if d] == ["fast", "fast"]


def test_close_returns_unstarted_messages_and_stops_handing_out() -> None:
    dispatcher = Dispatcher(threads=2, buffer_size=10)
    dispatcher.put("a", [delivery("a", n) for n in range(3)])
    started = dispatcher.take(0.01)
    assert started is not None
    unstarted = dispatcher.close()
    assert sorted(d.message_id for d in unstarted) == [1, 2]
    assert dispatcher.take(0.01) is None
    assert dispatcher.room_for("a") == 0


def test_a_rate_limited_type_refills_only_once_its_buffer_is_empty() -> None:
    dispatcher = Dispatcher(threads=4, buffer_size=10)
    dispatcher.put("a", [delivery("a", n) for n in range(2)])
    # Unlimited: refilled from half the share down, in large reads.
    assert dispatcher.room_for("a") == 8
    # Rate-limited: tokens taken now for messages queued behind others would be spent late.
    assert dispatcher.room_for("a", rate_limited=True) == 0
    for _ in range(2):
        taken = dispatcher.take(0.01)
        assert taken is not None
        dispatcher.done(taken)
    assert dispatcher.room_for("a", rate_limited=True) == 10


def test_a_call_set_back_is_handed_to_the_fetcher_once_and_frees_its_thread() -> None:
    dispatcher = Dispatcher(threads=1, buffer_size=10)
    dispatcher.put("a", [delivery("a", 1), delivery("a", 2)])
    late = dispatcher.take(0.01)
    assert late is not None
    dispatcher.set_back(late)
    assert dispatcher.in_flight() == 0
    assert dispatcher.take_late() == [late]
    assert dispatcher.take_late() == []
    # The one thread is free for the next message.
    assert dispatcher.take(0.01) == delivery("a", 2)


def test_close_returns_calls_set_back_but_not_yet_returned() -> None:
    dispatcher = Dispatcher(threads=1, buffer_size=10)
    dispatcher.put("a", [delivery("a", 1)])
    late = dispatcher.take(0.01)
    assert late is not None
    dispatcher.set_back(late)
    assert dispatcher.close() == [late]


def test_an_idle_executor_sleeps_until_put_or_close_wakes_it() -> None:
    """With nothing buffered an executor waits up to idle_timeout, but put() wakes it at once."""
    dispatcher = Dispatcher(threads=2, buffer_size=10)
    taken: list[tuple[Delivery | None, float]] = []

    def executor() -> None:
        started = time.monotonic()
        found = dispatcher.take(0.01, idle_timeout=30.0)
        taken.append((found, time.monotonic() - started))

    thread = threading.Thread(target=executor)
    thread.start()
    # Longer than the short timeout: an executor still waiting proves it used idle_timeout.
    threading.Event().wait(0.2)
    assert not taken
    dispatcher.put("a", [delivery("a", 1)])
    thread.join(timeout=5)
    assert taken
    assert taken[0][0] == delivery("a", 1)
    assert taken[0][1] < 5

    closer = threading.Thread(target=executor)
    closer.start()
    threading.Event().wait(0.05)
    assert dispatcher.close() == []
    closer.join(timeout=5)
    assert not closer.is_alive()
    assert taken[1][0] is None


def test_an_executor_held_back_with_work_buffered_looks_again_soon() -> None:
    """idle_timeout applies only to an empty buffer: a capped type is looked at each timeout."""
    dispatcher = Dispatcher(threads=1, buffer_size=10)
    dispatcher.put("a", [delivery("a", 1), delivery("a", 2)])
    running = dispatcher.take(0.01)  # the one thread's share: "a" is at its cap
    assert running is not None
    started = time.monotonic()
    assert dispatcher.take(0.05, idle_timeout=30.0) is None
    assert time.monotonic() - started < 5
