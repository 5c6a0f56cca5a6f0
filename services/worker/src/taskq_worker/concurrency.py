"""How many calls run at once: as many as make calls complete sooner, and no more.

Threads pay off while calls wait on slow targets. Against a fast target the
process is bound by the GIL instead, and each extra call in flight adds lock
hand-offs that make every call slower: against nginx on 2 cores, 10 threads
in flight delivered about 0.6x of what 1-2 threads did. The right number
depends on the targets of the moment, so the tuner finds it by hill climbing:
it measures completed calls per second over short windows and moves the limit
one step down or up a halving ladder, keeping a step only when it did not
cost throughput (going down) or clearly added some, in all or for one type
(going up).

Only windows in which some task type had a backlog throughout count (each of
its reads found as much work as there was room for): otherwise the rate
measures demand (or a rate limit), not the limit. A step down must also keep
every busy task type's own rate, so one type's gain cannot hide another's
loss. The tuner is pure bookkeeping; the dispatcher calls it under its lock
and applies `limit` (to calls of fast types only: see the dispatcher).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

WINDOW_SECONDS = 0.5  # shorter windows on a busy 2-core machine vary by 20% and more
WINDOW_MIN_CALLS = 30
WINDOW_MAX_SECONDS = 3.0  # a window this long is judged with whatever it counted
DOWN_TOLERANCE = 0.05  # a step down may cost this much of the best rate (measurement noise)
UP_GAIN = 0.05  # a step up must add this much
TYPE_TOLERANCE = 0.15  # a busy type's rate changing by more than this is no noise
TYPE_MIN_CALLS = 30  # a window lasts until each busy type has this many (up to the max)
DRIFT = 0.25  # a settled rate that moves this much means the targets changed: probe again
DRIFT_WINDOWS = 2  # ...in this many windows in a row
WINDOWS_PER_STEP = 2  # a level being tried is judged on the mean of this many windows
CLEAR_LOSS = 0.15  # ...unless its first window already lost this much: back at once
REPROBE_WINDOWS = 16  # otherwise probe again after this many settled windows
# Where the limit starts: low, like TCP's slow start. Against a fast target one
# or two calls at once is best from the first second; calls that wait on slow
# targets are not limited anyway, and types in between climb in a few windows.
START_LIMIT = 1
WARM_UP_WINDOWS = 2


def ladder(maximum: int) -> list[int]:
    """The limits the tuner moves between: `maximum`, then halving down to 1.

    Steps this large change the rate by more than the noise of one window.
    """
    levels = {maximum}
    level = maximum
    while level > 1:
        level = max(level // 2, 1)
        levels.add(level)
    return sorted(levels)


@dataclass(slots=True)
class _Measure:
    """Completed calls per second over one window, in all and per task type."""

    rate: float
    type_rates: dict[str, float]  # of the busy types counted often enough to judge


@dataclass(slots=True)
class _Probe:
    """A climb in progress: which way, where it would settle now, and what it must beat.

    Steps down are judged against the best rate of the whole climb, not the
    previous step, so tolerated losses cannot add up step after step.
    """

    direction: int  # -1 down, +1 up
    settle_index: int
    settle_rate: float
    best_rate: float
    start_type_rates: dict[str, float]  # each busy type's rate when the climb began
    settle_type_rates: dict[str, float]  # ...and where it would settle now
    samples: list[_Measure] = field(default_factory=list)  # at the level being tried


@dataclass(slots=True)
class _Window:
    started_at: float | None = None
    calls: Counter[str] = field(default_factory=Counter)
    total: int = 0
    backlogged: set[str] = field(default_factory=set)  # types whose reads filled the room
    ran_short: set[str] = field(default_factory=set)  # types with a read that did not

    def busy_types(self) -> set[str]:
        """Types with a backlog throughout: their rates are set by the limit, not demand."""
        return self.backlogged - self.ran_short

    def measures_the_limit(self) -> bool:
        return bool(self.busy_types())

    def is_full(self) -> bool:
        """Enough calls in all, and of every busy type, for their rates to be judged."""
        return self.total >= WINDOW_MIN_CALLS and all(
            self.calls[name] >= TYPE_MIN_CALLS for name in self.busy_types()
        )


def _mean(measures: list[_Measure]) -> _Measure:
    """The mean rate of `measures`, and of each type over the windows that judged it."""
    rates: dict[str, list[float]] = {}
    for measure in measures:
        for name, rate in measure.type_rates.items():
            rates.setdefault(name, []).append(rate)
    return _Measure(
        rate=sum(measure.rate for measure in measures) / len(measures),
        type_rates={name: sum(values) / len(values) for name, values in rates.items()},
    )


class ConcurrencyTuner:
    def __init__(self, maximum: int) -> None:
        self._levels = ladder(maximum)
        self._index = min(bisect.bisect_left(self._levels, START_LIMIT), len(self._levels) - 1)
        self._window = _Window()
        self._probe: _Probe | None = None
        self._reference: float | None = None  # the settled rate, smoothed
        self._settled_windows = 0
        self._drifted_windows = 0
        self._warm_up_left = WARM_UP_WINDOWS
        self._next_direction = 1  # from a low start, see first whether more helps

    @property
    def limit(self) -> int:
        return self._levels[self._index]

    def completed(self, task_type: str, now: float) -> None:
        """A call of `task_type` finished."""
        window = self._window
        if window.started_at is None:
            window.started_at = now
        window.calls[task_type] += 1
        window.total += 1

    def read_done(self, task_type: str, *, backlogged: bool) -> None:
        """A read of `task_type` found as much work as there was room for, or less."""
        if backlogged:
            self._window.backlogged.add(task_type)
        else:
            self._window.ran_short.add(task_type)

    def tick(self, now: float) -> None:
        """Close the window if it is due, and move the limit if its measure says so."""
        window = self._window
        if window.started_at is None:
            return
        elapsed = now - window.started_at
        if elapsed < WINDOW_SECONDS or (elapsed < WINDOW_MAX_SECONDS and not window.is_full()):
            return
        self._window = _Window(started_at=now)
        if not window.measures_the_limit():
            if self._probe is not None:
                # Work ran out: the step cannot be judged, and cannot have helped.
                self._index = self._probe.settle_index
                self._probe = None
                self._settled_windows = 0
            return
        measure = _Measure(
            rate=window.total / elapsed,
            type_rates={
                name: window.calls[name] / elapsed
                for name in window.busy_types()
                if window.calls[name] >= TYPE_MIN_CALLS
            },
        )
        if self._probe is None:
            self._settled(measure)
        else:
            self._judge(self._probe, measure)

    def _settled(self, measure: _Measure) -> None:
        reference = self._reference
        self._settled_windows += 1
        if reference is None or self._warm_up_left:
            # The first windows run while connections open and statements get
            # prepared: slower at any limit, they would make the next step up
            # look better than it is. Note them, and probe after.
            self._reference = measure.rate
            self._warm_up_left = max(self._warm_up_left - 1, 0)
            self._settled_windows = REPROBE_WINDOWS - 1
            return
        if abs(measure.rate - reference) > DRIFT * reference:
            self._drifted_windows += 1
        else:
            self._drifted_windows = 0
        if self._drifted_windows >= DRIFT_WINDOWS:
            # The targets changed (one window off is noise, two in a row are
            # not): slower calls may want more slots, faster ones fewer.
            self._next_direction = 1 if measure.rate < reference else -1
            self._reference = measure.rate
            self._start_probe(measure)
        elif self._settled_windows >= REPROBE_WINDOWS:
            self._start_probe(measure)
        else:
            self._reference = 0.8 * reference + 0.2 * measure.rate

    def _start_probe(self, measure: _Measure) -> None:
        direction = self._next_direction
        self._next_direction = -direction  # alternate, so both ways get tried
        if not 0 <= self._index + direction < len(self._levels):
            direction = -direction
            if not 0 <= self._index + direction < len(self._levels):
                return  # one level only: nothing to tune
        self._probe = _Probe(
            direction=direction,
            settle_index=self._index,
            settle_rate=measure.rate,
            best_rate=measure.rate,
            start_type_rates=measure.type_rates,
            settle_type_rates=measure.type_rates,
        )
        self._index += direction

    def _judge(self, probe: _Probe, measure: _Measure) -> None:
        probe.samples.append(measure)
        clear_loss = measure.rate < probe.best_rate * (1 - CLEAR_LOSS)
        if len(probe.samples) < WINDOWS_PER_STEP and not clear_loss:
            return
        measure = _mean(probe.samples)
        probe.samples = []
        if not clear_loss and self._is_better(probe, measure):
            probe.settle_index, probe.settle_rate = self._index, measure.rate
            probe.settle_type_rates = measure.type_rates
            probe.best_rate = max(probe.best_rate, measure.rate)
            following = self._index + probe.direction
            if 0 <= following < len(self._levels):
                self._index = following
                return
        self._index = probe.settle_index
        self._probe = None
        self._settled_windows = self._drifted_windows = 0
        self._reference = probe.settle_rate

    @staticmethod
    def _is_better(probe: _Probe, measure: _Measure) -> bool:
        """Up: more calls in all, or much more for some type at no cost in all. Down: no loss."""
        if probe.direction > 0:
            return measure.rate >= probe.best_rate * (1 + UP_GAIN) or (
                measure.rate >= probe.best_rate * (1 - DOWN_TOLERANCE)
                and any(
                    measure.type_rates.get(name, 0.0) > rate * (1 + TYPE_TOLERANCE)
                    for name, rate in probe.settle_type_rates.items()
                )
            )
        if measure.rate < probe.best_rate * (1 - DOWN_TOLERANCE):
            return False
        return all(
            measure.type_rates.get(name, 0.0) >= rate * (1 - TYPE_TOLERANCE)
            for name, rate in probe.start_type_rates.items()
        )
