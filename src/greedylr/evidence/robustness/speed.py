"""The speed check: a few runs trained one at a time, against the batched engine.

It measures the engine's speed-up and checks that the batch reproduces the reference
path (:func:`~greedylr.evidence.robustness.engine.train_one`) on the study's own runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from greedylr.evidence.robustness.design import StudyDesign
from greedylr.evidence.robustness.engine import train_one
from greedylr.evidence.robustness.task import RunSpec

__all__ = ["TrainedFamily", "speed_check"]


@dataclass(frozen=True)
class TrainedFamily:
    """What the speed check needs of a trained family (from memory or from its part)."""

    specs: list[RunSpec]
    final_loss: np.ndarray
    seconds: float


def speed_check(study: StudyDesign, batched: dict[str, TrainedFamily]) -> dict[str, Any]:
    """Train a few runs one at a time; their speed and their agreement with the batch.

    For each family, ``reference_runs`` spike runs at the strongest strength (so the
    check covers perturbation, schedule and training) are retrained by :func:`train_one`
    and compared with the same runs of the batch.
    """
    out: dict[str, Any] = {"families": {}}
    total_ref_runs = total_ref_s = 0.0
    for family, result in batched.items():
        picks = [i for i, s in enumerate(result.specs)
                 if s.perturbation.family in ("random_spike", "periodic_spike")
                 and s.perturbation.strength == max(c.strength for c in study.conditions)]
        picks = picks[:: max(1, len(picks) // study.reference_runs)][:study.reference_runs]
        seconds = 0.0
        worst = 0.0
        for i in picks:
            one = train_one(family, result.specs[i], steps=study.steps, average=study.average)
            seconds += one.seconds
            a, b = float(one.final_loss[0]), float(result.final_loss[i])
            worst = max(worst, abs(a - b) / max(abs(a), 1e-8))
        one_rate = len(picks) / seconds
        batch_rate = len(result.specs) / result.seconds
        out["families"][family] = {
            "batched_runs": len(result.specs),
            "batched_s": round(result.seconds, 2),
            "batched_runs_per_s": batch_rate,
            "one_at_a_time_runs_per_s": one_rate,
            "speedup": batch_rate / one_rate,
            "max_rel_diff_final_loss": worst,
        }
        total_ref_runs += len(picks)
        total_ref_s += seconds
    fams = out["families"]
    batched_total = sum(f["batched_runs"] for f in fams.values())
    batched_s = sum(f["batched_s"] for f in fams.values())
    # the whole study one at a time: every family's runs at its one-at-a-time rate
    serial_s = sum(f["batched_runs"] / f["one_at_a_time_runs_per_s"] for f in fams.values())
    out["batched_runs_per_s"] = batched_total / batched_s
    out["one_at_a_time_runs_per_s"] = batched_total / serial_s
    out["speedup"] = serial_s / batched_s
    out["reference_runs"] = int(total_ref_runs)
    out["reference_s"] = round(total_ref_s, 1)
    return out
