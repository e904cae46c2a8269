"""Round 38 prototype, descriptive: the rule observes a run at a resolution set by its
budget.

0.9 compares, counts and moves once per optimizer step, with a patience (10) and an
EMA (window 50) in steps, whatever the budget: a 2000-step run gives it ten times the
chances to move of a 200-step run, each on a noisier view of the progress. On the
sixteen seen splits' LR grids, the runs of more than 700 steps stand at half their
given LR by mid-run at every point of the grid (0.1x included, where the model is
short of LR) and are within 2% of the best-tuned cosine at 55% of their given-LR
points against cosine's 91% (at 300-700 steps: 81% against 90%).

``observe``: 0.9, except that with a budget of ``total_steps`` the comparison phase
sees one observation per ``k = max(1, total_steps // 300)`` steps, the mean of those
steps' finite losses (NaN where none was): the smoother, the streaks, the patience and
the blow-up guard count observations, as 0.9 does on a run of 300-599 steps. The
warmup ramp and the final cooldown still move every step, and the held-out rule is
0.9's. Runs of fewer than 600 steps, or without a budget, are 0.9's to the bit (the
patch calls 0.9's update unchanged). Marked by ``eps``; as :func:`prototypes.run_arms`,
over every split of ``HELDOUT_SPLITS`` (the sixteen seen ones)::

    python results/defaults/round38/observe_budget.py {heldout,grid} OUT
"""
from __future__ import annotations

import functools
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import patch_update, run_arms

from greedylr import rule

MARK = 3.1e-297
#: the marks the patch acts on (a later prototype that builds on this one adds its own)
MARKS = {MARK}
#: The budget (in steps) one observation per step is kept for; a longer budget sees
#: one observation per ``total_steps // REFERENCE_STEPS`` steps.
REFERENCE_STEPS = 300
_update = rule.update


def every(config: Any) -> int:
    """Steps per observation: 1 unless marked and told a budget of 600 steps or more."""
    if config.eps not in MARKS or config.total_steps is None:
        return 1
    return max(1, config.total_steps // REFERENCE_STEPS)


def observing_update(config: Any, state: Any, loss: float) -> Any:
    """0.9's update, but outside the warmup and the final cooldown only every
    ``every(config)``-th step, on the mean of the block's finite losses."""
    k = every(config)
    if k == 1:
        return _update(config, state, loss)
    step = state.step + 1
    start = config.anneal_start
    if step <= config.warmup or (start is not None and step >= start):
        return _update(config, state, loss)
    # the block in progress: the steps since the last observation (a prototype keeps
    # them outside the state's fields, on the instance)
    block = state.__dict__.setdefault("block", [])
    block.append(float(loss))
    if step % k:
        state.step = step
        return rule.Decision(tuple(state.lrs), state.smoothed)
    finite = [x for x in state.__dict__.pop("block") if math.isfinite(x)]
    return _update(config, state, math.fsum(finite) / len(finite) if finite else math.nan)


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "observe",
             functools.partial(patch_update, observing_update))
