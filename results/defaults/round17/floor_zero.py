"""Round 17 pilot, descriptive: a final cooldown that starts at the lower bound ends at 0.

The lower bound is 10% of the initial LR. Where the initial LR is far too large (the LR
grid's 10x), the rule comes down to that bound, the default LR itself, and sits there to
the end: the final cooldown then runs from the bound to the bound, and the run ends at an
LR cosine passed at 80% of its own. Round 14's cooldown to 0 for every run fixed the
grid's top on probe4 and cost 15 of 24 workloads a little at the given LR. Here only a
cooldown that starts with every group at its lower bound (the bound was binding: the
evidence that the initial LR was too large) anneals to 0 instead, as a cooldown started in
a blow-up already does; any other cooldown is 0.6's.

Marked by ``eps`` (the default is 0):

    python results/defaults/round17/floor_zero.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule

MARK = 4e-299
_anneal = rule._anneal


def _patched_anneal(config: Any, state: Any) -> int:
    starting = not state.anneal_from
    at_floor = all(lr <= lo for lr, lo in zip(state.lrs, state.min_lrs))
    code = _anneal(config, state)
    if config.eps == MARK and starting and at_floor:
        # the first cooldown step is at its start, where every shape is 1: only the end moves
        state.anneal_to_zero = True
    return code


def _patch() -> None:
    rule._anneal = _patched_anneal


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, "floorzero")
