"""Round 35 pilot, descriptive: a longer final cooldown under 0.9 (a knob of the package,
no patch).

``anneal_fraction=0.3`` and ``anneal_fraction=0.4`` (0.9: 0.2), each on top of 0.9's
defaults (told the budget, fed the validation half as the defaults' figures are), under
every split's held-out protocol (3 seeds, the workload's LR) to
``OUT/cooldown_heldout_<split>.json`` and at every point of every split's LR grid to
``OUT/cooldown_grid_<split>.json`` (:func:`prototypes.run_arms`, the sixteen seen splits
of ``HELDOUT_SPLITS``). A file already there is read, not rerun::

    python results/defaults/round35/cooldown.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greedy", {"anneal_fraction": 0.3}), ("greedy", {"anneal_fraction": 0.4}))


if __name__ == "__main__":
    run_arms(sys.argv[1:], ARMS, "cooldown")
