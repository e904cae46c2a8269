"""What the robustness study runs: every family x condition x schedule x seed."""

from __future__ import annotations

from dataclasses import dataclass

from greedylr.evidence.perturb import Perturbation, conditions
from greedylr.evidence.robustness.nets import NEURAL
from greedylr.evidence.robustness.presets import SCHEDULES
from greedylr.evidence.robustness.task import FAMILIES, RunSpec

__all__ = ["StudyDesign", "design"]


@dataclass(frozen=True)
class StudyDesign:
    """What the study runs: every family x condition x schedule x seed.

    The neural families get fewer seeds than the analytic functions because they cost
    a thousand times more per run; the analytic seeds are nearly free and bring the total
    above the paper's 8,100 runs. Headline pooled statistics use every run, as the
    paper's did; the per-family tables weigh each family once.
    """

    steps: int
    neural_seeds: tuple[int, ...]
    analytic_seeds: tuple[int, ...]
    conditions: tuple[Perturbation, ...]
    schedules: tuple[str, ...] = SCHEDULES
    families: tuple[str, ...] = FAMILIES
    reference_runs: int = 2
    #: score a power-function EMA of each run's weights (its gamma) instead of the
    #: weights themselves (:func:`greedylr.averaging.power_ema`); training is the same
    average: float | None = None

    def specs(self, family: str) -> list[RunSpec]:
        seeds = self.neural_seeds if family in NEURAL else self.analytic_seeds
        return [RunSpec(s, c, seed) for seed in seeds for c in self.conditions
                for s in self.schedules]

    @property
    def n_runs(self) -> int:
        return sum(len(self.specs(f)) for f in self.families)


def design(quick: bool) -> StudyDesign:
    """The full study (8,192 runs, 200 steps) or the quick one (one seed, strength 1)."""
    if quick:
        strong = tuple(c for c in conditions() if c.strength in (0.0, 1.0))
        return StudyDesign(steps=50, neural_seeds=(0,), analytic_seeds=(0,),
                           conditions=strong, reference_runs=1)
    return StudyDesign(steps=200, neural_seeds=(0, 1, 2), analytic_seeds=tuple(range(10)),
                       conditions=tuple(conditions()))
