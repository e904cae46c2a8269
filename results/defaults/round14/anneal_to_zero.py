"""Round 14 pilot, descriptive: the final cooldown ends at 0, as cosine's decay and the
warmup-stable-decay schedules do (Hägele et al. 2024, arXiv 2405.18392), instead of at the
lower bound (10% of the initial LR by default). The bound still holds during the run.

Round 2 tried ``min_lr_ratio=0.0`` (which also removes the bound mid-run) on the tuning
split at the given LR only, where it changed little. The splits seen since then show
GreedyLR missing cosine's final training loss (fresh: 5 of 12 runs) and far behind at
3.16x-10x of the LR, where a cooldown to the bound ends at 0.3x-1x of a tuned LR while
cosine's ends at 0. Marked by ``eps`` (the default is 0):

    python results/defaults/round14/anneal_to_zero.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule

MARK = 6e-299
_anneal = rule._anneal


def _patched_anneal(config: Any, state: Any) -> int:
    """The package's cooldown, run towards zero bounds: it reads ``state.min_lrs`` only as
    the cooldown's end, and the bounds are put back before anything else reads them."""
    if config.eps != MARK:
        return _anneal(config, state)
    bounds, state.min_lrs = state.min_lrs, [0.0] * len(state.min_lrs)
    try:
        return _anneal(config, state)
    finally:
        state.min_lrs = bounds


def _patch() -> None:
    rule._anneal = _patched_anneal


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, "anneal0")
