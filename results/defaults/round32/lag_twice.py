"""Round 32 prototype, descriptive: a lagging held-out value cuts only when it lags twice.

Round 31 found that 0.9's cut on a held-out value that improves but lags the training
loss (``eval_pace``) is both what stops a too-small LR from climbing and what protects a
model that starts to overfit, and that a gentler cut gives up the second for the first.
The two may differ in time: overfitting goes on (every later value lags too), while at a
small LR a lag is the held-out set's noise against a small improvement, and the next
value keeps pace. ``lag2``: a lagging value that follows a value that counted as better
(or is the first after one) blocks increases but cuts nothing; a second one in a row (or
a lagging value after a worse one) cuts as 0.9 does. Worse values are 0.9's (0.7,
compounding when worse by more than 3%). Everything else is 0.9's; the counters the cut
resets stay reset (only the LRs are put back). Marked by ``eps``; as
:func:`prototypes.run_arms`::

    python results/defaults/round32/lag_twice.py {heldout,grid} OUT
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

from greedylr import rule

MARK = 2.5e-297
_observed_eval = rule._observed_eval


def _patched_observed_eval(config: Any, state: Any, value: float) -> rule.Decision:
    if config.eps != MARK:
        return _observed_eval(config, state, value)
    before, best = list(state.lrs), state.eval_best
    after_bad = state.__dict__.get("eval_after_bad", False)  # the last value did not count
    decision = _observed_eval(config, state, value)
    if not math.isfinite(value) or state.anneal_from:  # ignored by the held-out rule
        return decision
    not_better = state.eval_block  # this value did not count as better
    state.__dict__["eval_after_bad"] = not_better
    lagging = not_better and best is not None and rule._worse(config.eval_mode, best, value)
    if lagging and state.lrs != before and not after_bad:
        state.lrs = before  # a first lag: increases blocked, no cut
        return rule.Decision(tuple(before), decision.smoothed)
    return decision


def _patch() -> None:
    rule._observed_eval = _patched_observed_eval


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "lag2", _patch)
