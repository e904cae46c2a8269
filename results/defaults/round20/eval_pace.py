"""Round 20 prototype: a held-out value counts as better only if it kept pace with the
training loss.

The package's held-out rule (0.7) calls a fed held-out value better when it beats the
best so far by any amount; a worse one blocks increases and cuts the LR by
``eval_factor``. Round 19's names classifier overfit while its held-out value still
improved, a little, at every evaluation (``gap_signal.py``: between evaluations its
held-out loss fell 0.4x as fast as its training loss, relatively, before it rose). Here
the held-out value must beat the best so far by ``PACE`` times the relative fall of the
rule's smoothed training loss since the last evaluation; one that does not (a lagging
value) is treated as 0.7 treats a worse one (``ARM``: ``block``, increases blocked
until a value keeps pace; ``cut``, blocked and the LR cut by ``eval_factor`` as for a
worse value). The best held-out value so far is still the lowest seen. With
``PACE = 0`` the ``cut`` arm is 0.7's rule.

Marked by ``eps`` (the default is 0):

    python results/defaults/round20/eval_pace.py ARM {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import events as ev
from greedylr import rule

PACE = 0.5
MARKS = {"block": 6e-299, "cut": 7e-299}
_observed_eval = rule._observed_eval


def _lagging(config: Any, state: Any, value: float) -> bool:
    """Whether ``value`` beats the best so far by less than PACE times the training
    loss's relative fall since the last evaluation (records this evaluation's pair)."""
    last = state.__dict__.get("pace_last")
    state.__dict__["pace_last"] = (state.smoothed, value)
    best = state.eval_best
    if last is None or best is None or state.smoothed is None or not last[0]:
        return False
    fall = max((last[0] - state.smoothed) / abs(last[0]), 0.0)
    needed = PACE * fall * abs(best)
    return not (value < best - needed if config.eval_mode == "min" else value > best + needed)


def _patched_observed_eval(config: Any, state: Any, value: float) -> rule.Decision:
    arm = {v: k for k, v in MARKS.items()}.get(config.eps)
    if (arm is None or config.eval_patience is None or not math.isfinite(value)
            or state.anneal_from):
        return _observed_eval(config, state, value)
    best = state.eval_best
    if not _lagging(config, state, value) or rule._worse(config.eval_mode, value, best):
        return _observed_eval(config, state, value)  # keeps pace, or worse: 0.7's rule
    # better than the best, but lagging: the best moves, the value counts as not better
    state.eval_best = value
    state.eval_block = True
    if arm == "block":
        state.num_good = 0
        return rule.Decision(tuple(state.lrs), state.smoothed)
    state.eval_bad += 1
    lrs = tuple(state.lrs)
    if state.eval_bad <= config.eval_patience:
        return rule.Decision(lrs, state.smoothed)
    state.eval_bad = 0
    state.num_good = state.num_bad = 0
    if config.compare == "recent_best" and state.smoothed is not None:
        state.reference = state.smoothed
    moved = rule._lower(state, config.eval_factor, config.eps)
    code = ev.EVAL_DECREASE if moved else ev.EVAL_DECREASE | ev.CLIPPED
    return rule._explained(config, state, value, (code, best, None), lrs)


def _patch() -> None:
    rule._observed_eval = _patched_observed_eval


if __name__ == "__main__":
    arm = sys.argv[1]
    prototypes.main(sys.argv[2:], {"eps": MARKS[arm]}, _patch, f"pace{arm}")
