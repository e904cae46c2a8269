"""Round 27, descriptive: two of the issue's candidates that are knobs of the package and
were last measured under 0.2, run under 0.8 on every split.

``noise_threshold=1`` (progress smaller than one standard error of the smoothed loss
counts as no progress: the rule anneals when progress is noise) and
``payoff_patience=10`` (an increase after which the smoothed loss is worse 10
observations later is undone, and the next one needs a longer streak), each on top of
0.8's defaults (told the budget, fed the validation half as the defaults' figures are).
``heldout`` runs both under every split's held-out protocol (3 seeds, the workload's LR)
to ``OUT/knobs_heldout_<split>.json``; ``grid`` both at every point of every split's LR
grid (the grid's seeds) to ``OUT/knobs_grid_<split>.json``. A file already there is read,
not rerun. Cosine and 0.8 are round 25's files in ``R25``::

    python results/defaults/round27/knobs.py {heldout,grid} OUT
    python results/defaults/round20/pooled.py heldout \
        OUT/knobs_heldout_*.json R25/plateau_heldout_*.json
    python results/defaults/round20/pooled.py grid OUT/knobs_grid_*.json R25/plateau_grid_*.json
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import every_split

KNOBS: tuple[dict[str, Any], ...] = ({"noise_threshold": 1.0}, {"payoff_patience": 10})


def _specs(protocol: str, split: str) -> list[Any]:
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_lr_grid_specs, heldout_specs

    if protocol == "heldout":
        return heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}",
                             choices=[("greedy", k) for k in KNOBS])
    cosine = [s for s in heldout_lr_grid_specs(split)
              if s.schedule == "cosine" and dict(s.settings) == {"workload_feed_split": True}]
    return [replace(s, schedule="greedy",
                    settings=tuple(sorted({**k, "workload_feed_split": True}.items())))
            for k in KNOBS for s in cosine]


if __name__ == "__main__":
    if sys.argv[1:2] not in (["heldout"], ["grid"]):
        raise SystemExit("usage: knobs.py {heldout,grid} OUT")
    every_split(lambda split: _specs(sys.argv[1], split), Path(sys.argv[2]),
                f"knobs_{sys.argv[1]}")
