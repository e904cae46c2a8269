"""Round 24, descriptive: GreedyLR 0.8 without a budget, and a constant LR, under the
held-out protocol of every split; and 0.8 without a budget on every split's LR grid.

Issue 12 asks for a rule that wins "without knowing the budget"; every figure of 0.8 so
far was measured told the run's length (``total_steps``, as cosine is told ``T_max``),
which only its final cooldown uses. ``anneal_fraction=0.0`` is 0.8 exactly as a user
gets it without a budget (the held-out rule and the blow-up guard on, no cooldown); a
constant LR is what such a user has otherwise. Both run on every split of
:data:`~greedylr.evidence.defaults.HELDOUT_SPLITS` (3 seeds, the workload's LR, evaluated
every 10%, GreedyLR fed the validation half), written one file per split to
``OUT/anytime_heldout_<split>.json`` (a file already there is read, not rerun), to be
scored against the stored cosine runs by ``round20/pooled.py heldout``. ``grid`` runs 0.8
without a budget at every point of every split's LR grid (the grid's seeds), to
``OUT/anytime_grid_<split>.json``, for ``round20/pooled.py grid``. ``unfed`` runs, under the
held-out protocol, 0.8 as a user gets it who passes neither a budget nor a held-out value
(``eval_patience=None`` too: the held-out rule is off, as it is when ``observe_eval`` is
never called), to ``OUT/anytime_unfed_<split>.json``::

    python results/defaults/round24/anytime.py {heldout,grid,unfed} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import every_split, grid_points

ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greedy", {"anneal_fraction": 0.0}),
    ("constant", {}),
)
UNFED: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greedy", {"anneal_fraction": 0.0, "eval_patience": None}),
)


def _specs(protocol: str, split: str) -> list[Any]:
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs

    if protocol != "grid":
        return heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}",
                             choices=ARMS if protocol == "heldout" else UNFED)
    return grid_points(split, ARMS[:1])


def main(protocol: str, out: Path) -> None:
    every_split(lambda split: _specs(protocol, split), out, f"anytime_{protocol}")


if __name__ == "__main__":
    if sys.argv[1:2] not in (["heldout"], ["grid"], ["unfed"]):
        raise SystemExit("usage: anytime.py {heldout,grid,unfed} OUT")
    main(sys.argv[1], Path(sys.argv[2]))
