"""The study's tables: one row per run (``runs.csv``) and per event (``events.csv``).

Written from a trained family's result, read back by the report: the report needs
nothing but these files.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from greedylr.evidence.robustness.engine import FamilyResult
from greedylr.evidence.robustness.nets import NEURAL
from greedylr.evidence.robustness.recovery import (
    RecoveryEvent,
    paper_recovery_ratio,
    recovery_events,
)

__all__ = ["EVENT_FIELDS", "RUN_FIELDS", "Table", "read_table", "summarise", "write_csv"]

Table = dict[str, np.ndarray]
"""A stored table read back: column name -> values."""

RUN_FIELDS = (
    "run", "family", "kind", "schedule", "perturbation", "perturb_family", "strength",
    "seed", "final_loss", "final_accuracy", "final_observed", "final_lr", "paper_recovery",
    "corrected_recovery", "events", "recovered", "median_recovery_steps",
)
EVENT_FIELDS = ("run", "start", "end", "level", "peak", "recovery_steps", "horizon")


def summarise(result: FamilyResult, first_run: int) -> tuple[list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    """Per-run rows and per-event rows of one family's result."""
    observed = result.observed.numpy().astype(np.float64)
    probe = result.probe.numpy().astype(np.float64)
    shifts = [result.shift_at if s.perturbation.family == "shard_shift" else None
              for s in result.specs]
    events = recovery_events(probe, result.corrupt.numpy(), shifts)
    by_run: dict[int, list[RecoveryEvent]] = {}
    for e in events:
        by_run.setdefault(e.run, []).append(e)
    paper = paper_recovery_ratio(observed)
    final_observed = observed[:, -10:].mean(axis=1)
    rows = []
    for i, spec in enumerate(result.specs):
        final = float(result.final_loss[i])
        mine = by_run.get(i, [])
        excess = [max(0.0, e.peak - e.level) for e in mine]
        steps = [e.recovery for e in mine if e.recovery is not None]
        rows.append({
            "run": first_run + i,
            "family": result.family,
            "kind": "neural" if result.family in NEURAL else "analytic",
            "schedule": spec.schedule,
            "perturbation": spec.perturbation.name,
            "perturb_family": spec.perturbation.family,
            "strength": spec.perturbation.strength,
            "seed": spec.seed,
            "final_loss": final,
            "final_accuracy": float(result.final_accuracy[i]),
            "final_observed": float(final_observed[i]),
            "final_lr": float(result.lr[i, -1]),
            "paper_recovery": float(paper[i]),
            "corrected_recovery": (max(excess) / max(final, 1e-12)) if excess else math.nan,
            "events": len(mine),
            "recovered": len(steps),
            "median_recovery_steps": float(np.median(steps)) if steps else math.nan,
        })
    event_rows = [{
        "run": first_run + e.run, "start": e.start, "end": e.end, "level": e.level,
        "peak": e.peak, "recovery_steps": "" if e.recovery is None else e.recovery,
        "horizon": e.horizon,
    } for e in events]
    return rows, event_rows


def write_csv(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as CSV, floats with 6 significant digits."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    tmp.replace(path)  # atomic: an interrupted study never leaves half a table


def read_table(path: Path) -> Table:
    """A stored table as columns: numbers as floats (an empty cell is NaN), else text."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    out: Table = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        try:
            out[key] = np.array([float(v) if v != "" else math.nan for v in values])
        except ValueError:
            out[key] = np.array(values)
    return out
