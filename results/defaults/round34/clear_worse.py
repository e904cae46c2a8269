"""Round 34 prototype, descriptive: a decrease on the training loss only where the smoothed
loss is clearly worse than its reference.

On the thirteenth probe split (round 33) 0.9 lost the FiLM network to its own training-loss
rule: on a noisy RMSprop loss, eleven smoothed values in a row that do not beat the best
since the last decrease came 37-43 times a run, each a decrease, and the LR stood at its
floor by 60% of the run. "Not better" is not "worse": on a plateau whose noise the EMA
does not remove, a streak of values a hair above the best cuts the LR as a rising loss
does. ``clear``: 0.9, except that a decrease the training-loss rule decides (not a
blow-up's, not a held-out cut) is vetoed unless the smoothed loss is worse than the
reference it was compared with by more than one standard error of the smoothed loss
(``noise_threshold=1``'s margin, measured by the rule's own noise tracker): a vetoed
decrease leaves the LRs, the reference and the hold as they were and spends the streak.
Marked by ``eps``; as :func:`prototypes.run_arms`, over every split of
``HELDOUT_SPLITS`` (the sixteen seen ones)::

    python results/defaults/round34/clear_worse.py {heldout,grid} OUT
"""
from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import cache, partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import patch_update, run_arms

from greedylr import rule

MARK = 5.1e-297
_update = rule.update


@cache
def _measuring(config: Any) -> Any:
    """``config`` with the noise tracker on (``noise_threshold=1``), to measure with."""
    return replace(config, noise_threshold=1.0)


def _patched_update(config: Any, state: Any, loss: float) -> rule.Decision:
    if config.eps != MARK:
        return _update(config, state, loss)
    if math.isfinite(loss):  # the state's own tracker, idle under 0.9's noise_threshold=0
        rule._track_noise(_measuring(config), state, float(loss))
    lrs, reference, hold = list(state.lrs), state.reference, state.hold
    decision = _update(config, state, loss)
    plain = [e for e in decision.events
             if e.kind == "decrease" and "blow-up" not in e.reason and "spike" not in e.reason]
    if not plain or state.smoothed is None or not math.isfinite(reference):
        return decision
    margin = rule._noise_margin(_measuring(config), state)
    worse = (state.smoothed > reference + margin if config.mode == "min"
             else state.smoothed < reference - margin)
    if worse:
        return decision
    state.lrs, state.reference, state.hold, state.num_bad = lrs, reference, hold, 0
    return rule.Decision(tuple(lrs), decision.smoothed,
                         tuple(e for e in decision.events if e not in plain))


_patch = partial(patch_update, _patched_update)


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "clear", _patch)
