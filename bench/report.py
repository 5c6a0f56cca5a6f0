"""One measurement, its JSON line and the table printed at the end."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO


@dataclass(frozen=True, slots=True)
class Measurement:
    """One figure of one scenario variant, with the baseline it is held against."""

    scenario: str
    variant: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, float | int | str] = field(default_factory=dict)

    def json_line(self, run_fields: dict[str, object] | None = None) -> str:
        record: dict[str, object] = asdict(self)
        record["time"] = time.time()
        record.update(run_fields or {})
        return json.dumps(record, allow_nan=False, default=str)


def clean(value: float | None) -> float | None:
    """None for NaN, so every JSON line stays valid JSON."""
    if value is None or math.isnan(value):
        return None
    return value


def format_number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: Sequence[Measurement]) -> str:
    """A Markdown table of the measurements (readable in a terminal and in docs)."""
    header = ["scenario", "variant", "value", "unit", "baseline", "ratio", "target", "met"]
    body = []
    for row in rows:
        baseline = format_number(row.baseline)
        if row.baseline_name and row.baseline is not None:
            baseline = f"{baseline} ({row.baseline_name})"
        met = {True: "yes", False: "NO", None: ""}[row.met]
        value = format_number(row.value) if row.value is not None else (row.note or "-")
        body.append(
            [
                row.scenario,
                row.variant,
                value,
                row.unit,
                baseline,
                "-" if row.ratio is None else f"{row.ratio:.2f}",
                row.target,
                met,
            ]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    lines = [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines.extend(render(line) for line in body)
    notes = [
        f"- {row.scenario} / {row.variant}: {row.note}"
        for row in rows
        if row.note and row.value is not None
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


class Recorder:
    """Collects measurements and appends each as one JSON line to the results file."""

    def __init__(self, stream: IO[str], run_fields: dict[str, object] | None = None) -> None:
        self._stream = stream
        self._run_fields = run_fields or {}
        self.rows: list[Measurement] = []

    def add(self, measurement: Measurement) -> Measurement:
        self.rows.append(measurement)
        self._stream.write(measurement.json_line(self._run_fields) + "\n")
        self._stream.flush()
        return measurement
