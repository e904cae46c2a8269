"""Round 39 prototype, descriptive: round 38's observation blocks and round 37's stalled
cooldown together.

Round 38 (``observe``: told a budget, one observation per ``total_steps // 300`` steps)
kept the LR of the long runs higher, which bought the bottom of the grid and cost its
top and the FiLM network, whose final cooldown then ended at the lower bound instead of
0 (round 34 lost it the same way). Round 37 (``stalled``: a final cooldown that starts
with increases blocked by the held-out rule ends at 0) gained at the top of the grid
and at the given LR. ``observe_stalled``: both, on top of 0.9; each patch as its round
wrote it, acting on this round's mark (``eps``) too. Runs of fewer than 600 steps are
round 37's ``stalled`` to the bit. As :func:`prototypes.run_arms`, over every split of
``HELDOUT_SPLITS`` (the sixteen seen ones)::

    python results/defaults/round39/observe_stalled.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round37"))
sys.path.insert(0, str(Path(__file__).parents[1] / "round38"))

import observe_budget
import stalled_zero
from prototypes import patch_update, run_arms

from greedylr import rule

MARK = 8.3e-297


def _patch() -> None:
    observe_budget.MARKS.add(MARK)
    stalled_zero.MARKS.add(MARK)
    rule._anneal = stalled_zero._anneal_if_stalled
    patch_update(observe_budget.observing_update)


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "observe_stalled", _patch)
