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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greedy", {"noise_threshold": 1.0}), ("greedy", {"payoff_patience": 10}))


if __name__ == "__main__":
    run_arms(sys.argv[1:], ARMS, "knobs")
