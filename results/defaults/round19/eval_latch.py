"""Round 19, after its outcome, descriptive: a held-out value that has worsened twice
blocks increases for the rest of the run.

Round 19's names classifier (eighth probe split) shows the failure: the rule raised its
LR to 2x by 30% of the run, its fed held-out value got worse again and again (each
worse value cuts the LR by ``eval_factor`` and blocks increases until the value
improves), and between the worse values the training loss raised the LR again: it
overfit at a high LR and lost the final metric by 8%. Overfitting does not go away, so
here the block becomes permanent once the held-out value has been worse ``LATCH`` times
(not in a row); before that, and in everything else, the package's defaults (0.7).

Marked by ``eps`` (the default is 0):

    python results/defaults/round19/eval_latch.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule

MARK = 9e-299
LATCH = 2
_observed_eval = rule._observed_eval


def _patched_observed_eval(config: Any, state: Any, value: float) -> rule.Decision:
    bad = state.eval_bad
    decision = _observed_eval(config, state, value)
    if config.eps != MARK:
        return decision
    # a worse value counted (eval_bad grew, or reached the patience and was reset with a cut)
    if state.eval_block and (state.eval_bad > bad or decision.events):
        state.__dict__["worse_values"] = state.__dict__.get("worse_values", 0) + 1
    if state.__dict__.get("worse_values", 0) >= LATCH:
        state.eval_block = True  # only a better held-out value clears it: never again
    return decision


def _patch() -> None:
    rule._observed_eval = _patched_observed_eval


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, "evallatch")
