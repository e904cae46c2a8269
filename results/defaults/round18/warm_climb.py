"""Round 18 pilot, descriptive: no increase before the smoother is warm.

The EMA of span ``window`` (50) starts at the first loss. Over the first tens of steps
the loss falls at any LR, so the average falls with it and every patience window reads
"better": the rule raises the LR 2-4 times in the first 50 steps on most workloads, at a
too-small, a right and a too-large LR alike. Cosine stands at 0.97x there; where
GreedyLR's training loss loses to cosine's at 10% of the run (9 of 33 workloads, by 1-10%),
that early climb is one suspect. Here an increase that would come at an observation
before ``window`` is dropped (the improving streak starts again, as a held-out block does);
decreases and everything else are 0.6's.

With ``FLOOR_ZERO=1`` the arm also has round 17's second pilot (a final cooldown that
starts with every group at its lower bound ends at 0; ``round17/floor_zero.py``).
Marked by ``eps`` (the default is 0), one marker per variant:

    [FLOOR_ZERO=1] python results/defaults/round18/warm_climb.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round17"))

import floor_zero
import prototypes

from greedylr import rule

FLOOR_ZERO = os.environ.get("FLOOR_ZERO") == "1"
MARK = 7e-299 if FLOOR_ZERO else 6e-299
_decide = rule._decide


def _patched_decide(config: Any, state: Any, finite: bool, loss: float) -> Any:
    if config.eps != MARK or state.step >= config.window:
        return _decide(config, state, finite, loss)
    blocked = state.eval_block
    state.eval_block = True  # the rule's own "no increase" path
    try:
        return _decide(config, state, finite, loss)
    finally:
        state.eval_block = blocked


def _patch() -> None:
    rule._decide = _patched_decide
    if FLOOR_ZERO:
        floor_zero.MARK = MARK
        floor_zero._patch()


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch,
                    "warmclimb_floorzero" if FLOOR_ZERO else "warmclimb")
