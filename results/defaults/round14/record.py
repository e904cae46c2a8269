"""Round 14 pilot, descriptive: an increase needs a new low of the smoothed loss (not in
the package yet).

With ``compare="recent_best"`` the reference is the best smoothed loss since the last
decrease. After a blow-up (a far too large LR: the loss goes from 0.01 to 143) every
decrease sets the reference to the current, bad value, and the recovery that follows
(143 -> 14) reads as progress: the rule raises the LR again, and at 10x of a tuned LR it
hovers instead of coming down (round 13: the colorizer at SGD LR 10). Here an increase is
allowed only while the smoothed loss is below every smoothed value seen so far (a record);
otherwise the good streak is dropped, as the held-out block drops it. Decreases are as
before. Marked by ``eps`` (the default is 0):

    python results/defaults/round14/record.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule

MARK = 5e-299
_decide = rule._decide


def _patched_decide(config: Any, state: Any, finite: bool) -> Any:
    if config.eps != MARK or state.smoothed is None or not finite:
        return _decide(config, state, finite)
    record = getattr(state, "_record", math.inf)
    at_record = state.smoothed < record
    blocked = state.eval_block
    if not at_record:
        state.eval_block = True
    outcome = _decide(config, state, finite)
    state.eval_block = blocked
    if state.step > config.warmup:
        state._record = min(record, state.smoothed)
    return outcome


def _patch() -> None:
    rule._decide = _patched_decide


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, "record")
