"""The pure parts of the benchmark suite: windows, percentiles, ratios, the table, the target."""

from __future__ import annotations

import json
import math

from bench.report import Measurement, format_table
from bench.stats import between, max_in_window, percentile, rate, ratio
from bench.target import TargetState, parse_head, sent_at_of


def test_max_in_window_counts_the_busiest_second() -> None:
    stamps = [0.0, 0.1, 0.5, 0.99, 1.0, 1.5, 3.0]
    assert max_in_window(stamps) == 4  # 0.0 .. 0.99; 1.0 starts a new window
    assert max_in_window([0.5, 0.2, 0.9, 1.1]) == 4  # unsorted input: 0.2 .. 1.1 < 1 s apart
    assert max_in_window([]) == 0
    assert max_in_window([5.0]) == 1


def test_max_in_window_with_a_burst() -> None:
    steady = [i / 64 for i in range(640)]  # 64/s for 10 s (exact binary fractions)
    burst = [4.0 + i / 1024 for i in range(30)]
    assert max_in_window(steady) == 64
    assert max_in_window(steady + burst) == 94


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10.0], 99) == 10.0
    assert math.isnan(percentile([], 50))
    assert percentile(list(range(101)), 99) == 99


def test_ratio_rate_and_between() -> None:
    assert ratio(50.0, 100.0) == 0.5
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(math.nan, 1.0) is None
    assert math.isnan(rate(10, 0))
    assert rate(10, 2) == 5
    assert between([0.0, 1.0, 2.0, 3.0], 1.0, 3.0) == [1.0, 2.0]


def test_table_and_json_line() -> None:
    row = Measurement(
        "fast target", "1 worker", 940.0, "calls/s", 1220.0, "bare loop", 0.77, ">= 0.8x", False
    )
    skipped = Measurement("retry path", "all", None, "", note="skipped: worker not available")
    table = format_table([row, skipped]).splitlines()
    assert table[0].startswith("| scenario")
    assert "1,220 (bare loop)" in table[2]
    assert "NO" in table[2]
    assert "skipped: worker not available" in table[3]
    assert len({len(line) for line in table}) == 1
    record = json.loads(row.json_line({"run": "abc"}))
    assert record["ratio"] == 0.77
    assert record["met"] is False
    assert record["run"] == "abc"


def test_target_fails_a_share_of_keys_once() -> None:
    state = TargetState()
    state.reset(0, 20)
    keys = [f"task-{i}" for i in range(1000)]
    first = [state.should_fail(key) for key in keys]
    again = [state.should_fail(key) for key in keys]
    assert 120 < sum(first) < 280
    assert not any(again)
    assert state.failures == sum(first)


def test_target_parsing() -> None:
    method, path, headers = parse_head(b"POST /call HTTP/1.1\r\nIdempotency-Key: k1\r\nX-A: b")
    assert (method, path, headers["idempotency-key"]) == ("POST", "/call", "k1")
    assert sent_at_of(b'{"n": 1, "sent_at": 12.5}') == 12.5
    assert sent_at_of(b'{"n": 1}') is None
    assert sent_at_of(b"not json sent_at") is None
