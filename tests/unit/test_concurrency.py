"""The concurrency tuner against modelled workers: where does it settle, and how fast."""

from __future__ import annotations

from collections.abc import Callable

from taskq_core.deliveries import Delivery
from taskq_core.status import TaskStatus
from taskq_worker.concurrency import ConcurrencyTuner, ladder
from taskq_worker.dispatcher import Dispatcher

# calls per second of each task type at a given limit
Model = Callable[[int], dict[str, float]]


def gil_bound(limit: int) -> dict[str, float]:
    """A fast target: one or two calls at once do best, each extra one costs 5%."""
    return {"fast": 3000.0 * (1 - 0.05 * max(limit - 2, 0))}


def network_bound(limit: int) -> dict[str, float]:
    """A 50 ms target: calls/s grow with the calls in flight."""
    return {"slow": limit / 0.05}


def run(
    tuner: ConcurrencyTuner,
    model: Model,
    seconds: float,
    *,
    start: float = 0.0,
    backlogged: bool = True,
    step: float = 0.01,
) -> list[int]:
    """Feed the tuner `seconds` of completions at the model's rates; the limits it chose."""
    limits = []
    now, owed = start, dict.fromkeys(model(tuner.limit), 0.0)
    while now < start + seconds:
        now += step
        for task_type, rate in model(tuner.limit).items():
            tuner.read_done(task_type, backlogged=backlogged)
            owed[task_type] = owed.get(task_type, 0.0) + rate * step
            while owed[task_type] >= 1:
                owed[task_type] -= 1
                tuner.completed(task_type, now)
                tuner.tick(now)
        limits.append(tuner.limit)
    return limits


def test_ladder_halves_down_from_the_maximum() -> None:
    assert ladder(10) == [1, 2, 5, 10]
    assert ladder(1) == [1]
    assert ladder(200) == [1, 3, 6, 12, 25, 50, 100, 200]


def test_a_gil_bound_worker_settles_on_few_calls_within_two_seconds() -> None:
    tuner = ConcurrencyTuner(10)
    limits = run(tuner, gil_bound, 2.0)
    assert limits[0] == 1  # it starts low...
    assert max(limits) <= 2  # ...looks one step up, finds nothing better...
    assert tuner.limit <= 2
    # ...and stays there: later probes up find nothing better.
    run(tuner, gil_bound, 20.0, start=2.0)
    assert tuner.limit <= 2


def test_a_network_bound_worker_climbs_to_every_thread() -> None:
    tuner = ConcurrencyTuner(50)
    climb = run(tuner, network_bound, 10.0)
    assert climb[-1] == 50
    # Probes down happen, but are short: nearly all the time is spent at the top.
    limits = run(tuner, network_bound, 20.0, start=10.0)
    assert tuner.limit == 50
    assert limits.count(50) / len(limits) > 0.9


def test_a_window_that_ran_out_of_work_moves_nothing() -> None:
    tuner = ConcurrencyTuner(10)
    limits = run(tuner, gil_bound, 5.0, backlogged=False)
    assert set(limits) == {1}


def test_when_targets_slow_down_the_limit_climbs_back() -> None:
    tuner = ConcurrencyTuner(16)
    run(tuner, gil_bound, 3.0)
    assert tuner.limit <= 2
    run(tuner, network_bound, 15.0, start=3.0)
    assert tuner.limit == 16


def test_a_step_down_may_not_squeeze_a_slower_type_behind_a_fast_one() -> None:
    def mixed(limit: int) -> dict[str, float]:
        # The fast type's rate barely depends on the limit; the 10 ms type's
        # (with half the slots) does, though its share of the total is small.
        return {"fast": 3000.0, "medium": (limit / 2) / 0.01}

    tuner = ConcurrencyTuner(10)
    run(tuner, mixed, 6.0)
    limits = run(tuner, mixed, 20.0, start=6.0)
    assert tuner.limit == 10
    assert limits.count(10) / len(limits) > 0.85  # brief probes down are rejected


def delivery(task_type: str, message_id: int) -> Delivery:
    return Delivery(f"q_{task_type}", message_id, task_type, "{}", None, 0, TaskStatus.PENDING)


def tuned_down_dispatcher(now: list[float], fast_type: str) -> Dispatcher:
    """A 4-thread dispatcher whose tuner settled on 1 call at once; `now[0]` is its clock.

    One instant call of `fast_type` has shown it to be fast (types start out as slow).
    """
    tuner = ConcurrencyTuner(4)
    run(tuner, gil_bound, 10.0)
    assert tuner.limit == 1
    dispatcher = Dispatcher(threads=4, buffer_size=100, tuner=tuner, clock=lambda: now[0])
    dispatcher.put(fast_type, [delivery(fast_type, -1)])
    dispatcher.take(0.0, finished=dispatcher.take(0.0))
    return dispatcher


def test_a_stalled_call_stops_counting_against_the_limit() -> None:
    now = [0.0]
    dispatcher = tuned_down_dispatcher(now, "a")
    dispatcher.put("a", [delivery("a", n) for n in range(3)])
    assert dispatcher.take(0.0) is not None
    assert dispatcher.take(0.0) is None  # the one slot is taken
    now[0] = 0.5  # the call has been waiting on its target for half a second
    assert dispatcher.take(0.0) is not None


def test_calls_that_wait_on_slow_targets_are_not_limited() -> None:
    now = [0.0]
    dispatcher = tuned_down_dispatcher(now, "fast")
    dispatcher.put("slow", [delivery("slow", n) for n in range(20)])
    call = dispatcher.take(0.0)
    for _ in range(3):  # a few 50 ms calls show that "slow" waits on its target
        now[0] += 0.05
        call = dispatcher.take(0.0, finished=call)
    assert call is not None
    assert call.task_type == "slow"
    dispatcher.put("fast", [delivery("fast", n) for n in range(20)])
    taken = [dispatcher.take(0.0) for _ in range(3)]
    # Beside the slow call in flight: one fast call (the limit) and one more slow
    # call (its fair share of 4 threads is 2), though the limit is 1.
    assert sorted(call.task_type for call in taken if call is not None) == ["fast", "slow"]
    assert taken[-1] is None
