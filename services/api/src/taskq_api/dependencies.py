"""What handlers receive by injection: built once in create_app, never read from globals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits from the settings that handlers enforce themselves."""

    max_payloads: int
