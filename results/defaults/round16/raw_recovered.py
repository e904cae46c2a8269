"""Round 16 pilots, descriptive: a blow-up step whose raw loss is back below the first
value (or half of it) counts neither as better nor as worse.

0.5's guard (``blowup_ratio``, round 15) judges the smoothed loss. A loss that spikes for
a step or two and is back below its first value at once (the model undamaged) keeps the
EMA (span 50) above the guard's line for a hundred steps or more, and the guard reads
every one of them as worse: its squared decreases take the LR to its floor. Seen twice:
round 15's graph network (probe5, at its LR; RMSE 0.117 -> 0.137) and, in the 0.5 rerun
of the probe split's LR grid, the flower Fourier MLP at 3.16x its Adagrad LR (a 16,000x
spike on step 1, the raw loss below its first value from step 3; final held-out loss
0.0127 -> 0.0252, cosine 0.0119). Here, while the smoothed loss is in a blow-up, a step
whose raw loss is at or below the first value is neutral: no increase (nothing in a
blow-up is progress), no count towards a decrease. A blow-up whose raw loss stays above
the first value (the damaged super-resolution CNN of round 14) is cut as in 0.5.

Marked by ``eps`` (the default is 0):

    python results/defaults/round16/raw_recovered.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule

#: ``RAW_RECOVERED``: ``always`` (version 1, above); ``entry`` (version 2: only until the
#: blow-up's first decrease, ``blowup_cuts == 0``; after it the blow-up runs as 0.5's);
#: ``half`` (version 3: the raw loss back at or below half the first value, since a model
#: that collapsed to a constant prediction sits just below its first loss; the package's
#: ``blowup_raw_check`` since, ``raw_check.py``).
VARIANT = os.environ.get("RAW_RECOVERED", "always")
ENTRY = VARIANT == "entry"
BACK = 0.5 if VARIANT == "half" else 1.0
MARK = {"always": 7e-299, "entry": 8e-299, "half": 9e-299}[VARIANT]
_decide = rule._decide


def _neutral(config: Any, state: Any, raw: float) -> bool:
    """In a blow-up (as ``rule._decide`` tests it, at the point where it would), with the
    raw loss back at or below ``BACK`` times the first value."""
    if state.payoff_left > 0 or state.hold > 0 or state.step <= config.warmup:
        return False
    if config.total_steps is not None and state.step >= config.anneal_start:
        return False
    first = state.first
    if first is None or not first > 0 or (ENTRY and state.blowup_cuts):
        return False
    ratio = 1.0 if state.blowup_cuts else config.blowup_ratio
    smoothed = state.smoothed
    if config.mode == "min":
        return smoothed > ratio * first and raw <= BACK * first
    return smoothed * ratio < first and raw * BACK >= first


def _patched_decide(config: Any, state: Any, finite: bool, loss: float) -> Any:
    if config.eps == MARK and finite and _neutral(config, state, loss):
        state.num_good = 0
        return rule._NOTHING
    return _decide(config, state, finite, loss)


def _patch() -> None:
    rule._decide = _patched_decide


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, f"raw{VARIANT}")
