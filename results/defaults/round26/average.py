"""Round 26, descriptive: GreedyLR 0.8 and cosine scored on the average of their weights
(the companion round 5 adopted, ``workload_power_ema=7``), pooled over every split.

Round 5 measured the average on two splits under the 0.2 rule; the README recommends
it for snapshots taken before the end of a run, and no round since has measured it
under 0.8 beside the figures the issue's targets are stated in. ``heldout`` runs both
arms on the average under every split's held-out protocol (3 seeds, the workload's LR;
the fed value comes from the average too) to ``OUT/average_heldout_<split>.json``;
``grid`` both arms on the average at every point of every split's LR grid (the grid's
seeds) to ``OUT/average_grid_<split>.json``. A file already there is read, not rerun.
The plain-weights arms are round 25's files in ``R25`` (cosine and 0.8 on the held-out
protocol; cosine on the grids), which this round pools with its own (``H``, ``G``)::

    python results/defaults/round26/average.py {heldout,grid} OUT
    H="OUT/average_heldout_*.json R25/plateau_heldout_*.json"
    G="OUT/average_grid_*.json R25/plateau_grid_*.json"
    python results/defaults/round20/pooled.py heldout $H
    python results/defaults/round20/pooled.py heldout --against 'cosine(workload_power_ema=7)' $H
    python results/defaults/round20/pooled.py grid $G
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cosine", {"workload_power_ema": 7}), ("greedy", {"workload_power_ema": 7}))


if __name__ == "__main__":
    run_arms(sys.argv[1:], ARMS, "average")
