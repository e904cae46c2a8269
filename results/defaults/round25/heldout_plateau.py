"""Round 25, descriptive: torch's ``ReduceLROnPlateau`` fed the held-out value, the
budget-free schedule a user who evaluates already has, beside GreedyLR 0.8.

Round 24 found 0.8 level with cosine on 42-44 of 49 workloads when it is fed a held-out
value (``observe_eval``), and little better than a constant LR without one. The baseline
that question calls for is the one every framework ships: a plateau scheduler stepped
with the validation value at each evaluation, here the package's ``reduce_on_plateau_eval``
(:class:`~greedylr.studies.schedules.HeldOutPlateau`, added from this round: torch's
``ReduceLROnPlateau`` on the workload's warmup ramp, stepped only with the fed values,
the validation half every 10% of the run, as GreedyLR's ``observe_eval``; the training
loss never reaches it). Two settings, declared before any run: ``factor=0.5, patience=1`` (a user's
choice with ten evaluations a run; torch's ``patience=10`` would never fire) and
``factor=0.7, patience=0`` (GreedyLR's own ``eval_factor`` and ``eval_patience``: its
held-out rule without the training-loss rule, the pace test or the cooldown).

``heldout`` runs cosine, 0.8 (told the budget, as the defaults' figures are) and both
plateau arms under every split's held-out protocol (3 seeds, the workload's LR), to
``OUT/plateau_heldout_<split>.json``; ``grid`` runs cosine and both plateau arms at every
point of every split's LR grid (the grid's seeds), to ``OUT/plateau_grid_<split>.json``.
A file already there is read, not rerun. Score with ``round20/pooled.py heldout|grid``::

    python results/defaults/round25/heldout_plateau.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import _run

PLATEAUS: tuple[dict[str, Any], ...] = ({"factor": 0.5, "patience": 1},
                                        {"factor": 0.7, "patience": 0})
ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cosine", {}), ("greedy", {}), *(("reduce_on_plateau", p) for p in PLATEAUS))


def _patch() -> None:
    """In each worker: ``reduce_on_plateau`` is built as ``reduce_on_plateau_eval``
    (:class:`~greedylr.studies.schedules.HeldOutPlateau`), which the package gained from
    this round, so that the stored runs keep the name they were made under; no other
    arm here uses it, and every other schedule is built as the package builds it."""
    from greedylr.studies import schedules

    build = schedules.build_schedule

    def build_schedule(name: str, optimizer: Any, *, total_steps: int, warmup: int = 0,
                       **settings: Any) -> Any:
        if name == "reduce_on_plateau":
            name = "reduce_on_plateau_eval"
        return build(name, optimizer, total_steps=total_steps, warmup=warmup, **settings)

    schedules.build_schedule = build_schedule


def _specs(protocol: str, split: str) -> list[Any]:
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_lr_grid_specs, heldout_specs

    if protocol == "heldout":
        return heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}", choices=ARMS)
    cosine = [s for s in heldout_lr_grid_specs(split)
              if s.schedule == "cosine" and dict(s.settings) == {"workload_feed_split": True}]
    return cosine + [replace(s, schedule="reduce_on_plateau",
                             settings=tuple(sorted({**p, "workload_feed_split": True}.items())))
                     for p in PLATEAUS for s in cosine]


def main(protocol: str, out: Path) -> None:
    from greedylr.evidence.defaults import HELDOUT_SPLITS

    for split in HELDOUT_SPLITS:
        _run(_specs(protocol, split), out / f"plateau_{protocol}_{split}.json", _patch)

if __name__ == "__main__":
    if sys.argv[1:2] not in (["heldout"], ["grid"]):
        raise SystemExit("usage: heldout_plateau.py {heldout,grid} OUT")
    main(sys.argv[1], Path(sys.argv[2]))
