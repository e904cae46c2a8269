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
from greedylr.config import _anneal_shape

MARK = 6e-299
_anneal = rule._anneal


def _patched_anneal(config: Any, state: Any) -> int:
    if config.eps != MARK:
        return _anneal(config, state)
    start = config.anneal_start
    code = 0
    if not state.anneal_from:
        state.anneal_from = list(state.lrs)
        code = rule.ev.ANNEAL
    k = min(state.step - start, config.anneal_steps)
    shape = _anneal_shape(config.anneal_shape, k / config.anneal_steps)
    state.lrs = [a * shape for a in state.anneal_from]
    return code


def _patch() -> None:
    rule._anneal = _patched_anneal


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, "anneal0")
