"""Round 31 prototype, descriptive: held-out cuts graded by the strength of the evidence.

0.9 cuts the LR by ``eval_factor`` (0.7) on two kinds of held-out value, one that is worse
than the best so far and one that still improves but lags the training loss
(``eval_pace``), and compounds the cut on a value worse by more than 3%
(``eval_compound_margin``). A lagging value is the weakest evidence of the three: the
model still generalizes better than before. On 0.8's grid runs (round 29) a run makes
about 1.1-1.5 cuts on lagging values whatever its LR (0.1x 1.10, 0.316x 1.49, 1x 1.51,
3.16x 1.29, 10x 1.31), each undoing seven increases of the training-loss rule: below the
tuned LR, where the rule must climb, that is most of what stops it. ``graded``: a cut on a
lagging value takes ``eval_factor ** 0.5`` (0.837) instead; a cut on a worse value is
0.9's (0.7, compounding when clearly worse). Everything else is 0.9's. Marked by
``eps``; as :func:`prototypes.run_arms`::

    python results/defaults/round31/graded.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

from greedylr import rule

MARK = 2.3e-297
#: what a cut on a lagging held-out value takes, as a power of ``eval_factor``
LAG_POWER = 0.5
_observed_eval = rule._observed_eval


def _patched_observed_eval(config: Any, state: Any, value: float) -> rule.Decision:
    if config.eps != MARK:
        return _observed_eval(config, state, value)
    before, best = list(state.lrs), state.eval_best
    decision = _observed_eval(config, state, value)
    lagging = best is not None and rule._worse(config.eval_mode, best, value)
    if state.lrs != before and lagging:  # a cut on a value better than the best: lagging
        state.lrs = [max(b * config.eval_factor ** LAG_POWER, low) if now != b else b
                     for b, now, low in zip(before, state.lrs, state.min_lrs)]
        return rule.Decision(tuple(state.lrs), decision.smoothed, decision.events)
    return decision


def _patch() -> None:
    rule._observed_eval = _patched_observed_eval


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "graded", _patch)
