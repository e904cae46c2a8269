"""Round 29 prototype, descriptive: held-out cuts that compound only on a held-out value
that is worse, not on one that merely lags.

Round 28's ``squared`` arm (each held-out cut that follows a cut, with no value keeping
pace between them, squares the factor of the one before: 0.7, 0.49, 0.24, ...) took the
grid's 10x points from 1.52 to 1.43 times the best-tuned cosine's loss, and lost at the
grid's bottom (worse than 0.8 by more than 2% at 12 of 94 points at 0.1x and 0.316x,
better at 1). 0.8 cuts on two kinds of held-out value: one worse than the best so far,
and one that improves but lags the training loss (``eval_pace``). On 0.8's own grid runs
(``runs/r28/base_grid_*``, before 80% of the run), a run started at 0.1x makes 0.5
cuts on worse values and 1.1 on lagging ones; at 10x 2.05 and 1.31: a worse value is
what marks a too-large LR. Here (``worse``) a cut on a worse value takes
``eval_factor ** (2 ** k)``, ``k`` the cuts on worse values since the last value that
kept pace (0.7, 0.49, 0.24, 0.058, then 0.003 each time, not below the lower bound); a
cut on a lagging value is 0.8's (0.7) and leaves ``k`` as it is. ``worse3`` (added
after ``worse``'s outcome, before any of its runs): the same, a value counting as worse
only where it exceeds the best so far by more than 3% of it (on 0.8's grid runs the
median rise of a worse value is 1.8% at 0.1x and 2.6% at 0.316x, 6.0% at 1x, 9.8% at
3.16x and 9.9% at 10x); a smaller rise cuts as a lagging value does. Everything else is
0.8's. Marked by ``eps``; as :func:`prototypes.run_arms`::

    python results/defaults/round29/compound.py {worse,worse3} {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round28"))

from ceiling import compound_cut
from prototypes import run_arms

from greedylr import rule

MARKS = {"worse": 1.7e-297, "worse3": 1.9e-297}
#: ``worse3``: the relative rise over the best so far that counts as worse
MARGIN = 0.03
_observed_eval = rule._observed_eval


def _patched_observed_eval(config: Any, state: Any, value: float) -> rule.Decision:
    arm = {v: k for k, v in MARKS.items()}.get(config.eps)
    if arm is None:
        return _observed_eval(config, state, value)
    before, best = list(state.lrs), state.eval_best
    decision = _observed_eval(config, state, value)
    worse_cuts = state.__dict__.get("eval_worse_cuts", 0)
    if state.lrs != before:  # a held-out cut
        margin = MARGIN * abs(best) if arm == "worse3" and best is not None else 0.0
        worse = best is not None and rule._worse(
            config.eval_mode, value - margin if config.eval_mode == "min" else value + margin,
            best)
        if worse:
            compound_cut(config, state, worse_cuts)
            state.__dict__["eval_worse_cuts"] = worse_cuts + 1
            return rule.Decision(tuple(state.lrs), decision.smoothed, decision.events)
    elif state.eval_best == value and not state.eval_block:  # kept pace
        state.__dict__["eval_worse_cuts"] = 0
    return decision


def _patch() -> None:
    rule._observed_eval = _patched_observed_eval


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MARKS:
        raise SystemExit("usage: compound.py {worse,worse3} {heldout,grid} OUT")
    name = sys.argv[1]
    run_arms(sys.argv[2:], (("greedy", {"eps": MARKS[name]}),),
             "compound" if name == "worse" else name, _patch)
