"""The trace file formats' shared vocabulary: the header's name and version, and how
floats and events are written as JSON (the sinks write it, ``files`` reads it back).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from greedylr.rule import Event

_FORMAT = "greedylr.trace"
_VERSION = 1


def _json_float(value: float) -> float | str | None:
    # standard JSON has no NaN/Infinity; null and strings keep the file readable by jq,
    # pandas and browsers while the loader restores the exact value
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _json_number(value: float) -> str:
    if value != value:
        return "null"
    if value in (math.inf, -math.inf):
        return '"inf"' if value > 0 else '"-inf"'
    return repr(value)  # a finite float's repr is valid JSON and round-trips exactly


def _from_json_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _event_json(event: Event) -> dict[str, Any]:
    data = event.to_dict()
    for key in ("loss", "smoothed", "reference"):
        if data[key] is not None:
            data[key] = _json_float(data[key])
    for key in ("lrs_before", "lrs_after"):
        data[key] = [_json_float(v) for v in data[key]]
    return data


def _event_from_json(data: Mapping[str, Any]) -> Event:
    def opt(value: Any) -> float | None:
        return None if value is None else float(value)

    return Event(
        step=int(data["step"]),
        kind=data["kind"],
        reason=data["reason"],
        loss=_from_json_float(data["loss"]),
        smoothed=opt(data["smoothed"]),
        reference=opt(data["reference"]),
        lrs_before=tuple(_from_json_float(v) for v in data["lrs_before"]),
        lrs_after=tuple(_from_json_float(v) for v in data["lrs_after"]),
    )
