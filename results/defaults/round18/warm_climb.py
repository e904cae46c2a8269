"""Round 18 pilot, descriptive: no increase before the smoother is warm.

The EMA of span ``window`` (50) starts at the first loss. Over the first tens of steps
the loss falls at any LR, so the average falls with it and every patience window reads
"better": the rule raises the LR 2-4 times in the first 50 steps on most workloads, at a
too-small, a right and a too-large LR alike. Cosine stands at 0.97x there; where
GreedyLR's training loss loses to cosine's at 10% of the run (9 of 33 workloads: by 1-10%,
the terrain MLP by 2x), that early climb is one suspect. Here an increase that would come
at an observation before ``window`` is dropped (the improving streak starts again, as a
held-out block does); decreases and everything else are the package's defaults (0.6's
when round 18 ran it).

Marked by ``eps`` (the default is 0):

    python results/defaults/round18/warm_climb.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule

MARK = 6e-299
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


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, "warmclimb")
