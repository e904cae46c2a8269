"""Round 33 prototype, descriptive: a raw loss far above the untrained model's halves the
LR at once.

At the top of 0.9's LR grids (round 29; 3.16x: 1.13, 10x: 1.48 of the best-tuned cosine)
the final metric is lost in the first steps: the raw training loss jumps to 10-10^4 times
its first value (the untrained model's) within a few steps at 10x on 42% of cosine's
runs, at 1x on 6%, and the model that comes back from it is damaged for good. 0.9's
blow-up guard (``blowup_ratio=100``) reads the smoothed loss and still waits out the
patience: its first decrease comes tens of steps after the jump. ``spike``: a step whose
raw loss is more than ``RATIO`` times the first raw loss (or not finite) is a spike step;
on the second spike step in a row, and on each one after it, every LR is halved at once
(never below its lower bound, never raised, not during the final cooldown) and the
rule's streak counters restart. A single spike step that the next step undoes (a
transient at the given LR) cuts nothing. Everything else is 0.9's. Marked by ``eps``;
as :func:`prototypes.run_arms`::

    python results/defaults/round33/spike.py {heldout,grid} OUT
"""
from __future__ import annotations

import math
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import patch_update, run_arms

from greedylr import rule

MARK = 4.3e-297
#: a raw loss more than this many times the first is a spike step
RATIO = 10.0
#: what each spike step after the first in a row does to every LR
CUT = 0.5
_update = rule.update


def _patched_update(config: Any, state: Any, loss: float) -> rule.Decision:
    decision = _update(config, state, loss)
    if config.eps != MARK:
        return decision
    first = state.__dict__.get("spike_first")
    if first is None:
        if math.isfinite(loss) and loss > 0:
            state.__dict__["spike_first"] = float(loss)
        return decision
    spiking = not math.isfinite(loss) or loss > RATIO * first
    after_spike = state.__dict__.get("spike_prev", False)
    state.__dict__["spike_prev"] = spiking
    if not (spiking and after_spike) or state.anneal_from:
        return decision
    state.lrs = [min(lr, max(lr * CUT, low)) for lr, low in zip(state.lrs, state.min_lrs)]
    state.num_good = state.num_bad = 0
    return rule.Decision(tuple(state.lrs), decision.smoothed, decision.events)


_patch = partial(patch_update, _patched_update)


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "spike", _patch)
