"""How numbers, names and tables print in a report: the cells every section shares."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greedylr.studies import metrics as M
from greedylr.studies.metrics import Result

__all__ = [
    "markdown_table",
    "num",
    "pct",
    "setting_title",
    "slug",
    "stat_cell",
    "workload_label",
]


def num(value: float | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits; ``-`` for none or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def stat_cell(s: M.Stat, digits: int = 4) -> str:
    """``mean ± std [lo, hi]``, or the single value, or ``-``."""
    if s.n == 0:
        return "-"
    if s.n == 1:
        return num(s.mean, digits)
    lo, hi = s.ci
    return f"{num(s.mean, digits)} ± {num(s.std, 2)} [{num(lo, digits)}, {num(hi, digits)}]"


def pct(value: float) -> str:
    """A percentage with one decimal; ``-`` for NaN."""
    return "-" if math.isnan(value) else f"{value:.1f}%"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; ``|`` inside a cell is escaped."""

    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def setting_title(setting: tuple[Any, ...], runs: list[Result]) -> str:
    """A setting's heading: workload, optimizer, length, LR, warmup, shared options and
    how often it was evaluated."""
    _study, workload, _optimizer, steps, lr, warmup, shared, eval_every = setting
    sample = runs[0]
    label = sample["spec"].get("workload", workload)
    used_lr = sample.get("lr") if lr is None else lr
    parts = [f"`{label}`", M.group_optimizer(runs), f"{steps} steps", f"lr {num(used_lr)}"]
    if warmup:
        parts.append(f"warmup {warmup}")
    parts += [f"{k}={v}" for k, v in shared]
    if eval_every:
        parts.append(f"evaluated every {eval_every} steps")
    return ", ".join(parts)


def slug(setting: tuple[Any, ...]) -> str:
    """A file-name stem for a study (a 1-tuple) or a setting, unique by a short digest."""
    if len(setting) == 1:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(setting[0]))
    study, workload, optimizer, steps = setting[:4]
    stem = workload.rpartition(":")[0].rsplit("/", 1)[-1].removesuffix(".py") or workload
    name = workload.rpartition(":")[2] if ":" in workload else ""
    digest = hashlib.sha1(repr(setting).encode()).hexdigest()[:6]
    raw = "-".join(x for x in (study, stem, name, optimizer, str(steps), digest) if x)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)


def workload_label(workload: str) -> str:
    """``path/to/file.py:train`` -> ``file:train``; a registered name as it is."""
    target, _, function = workload.rpartition(":")
    return f"{Path(target).stem}:{function}" if target else workload
