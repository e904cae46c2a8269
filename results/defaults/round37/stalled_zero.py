"""Round 37 prototype, descriptive: a final cooldown ends at 0 where the held-out value
had stopped improving when it began.

Round 36 ended every cooldown at 0: it gained where the held-out value had turned (the
Mamba, the Perceiver) and lost where the model was still learning at the end (the GRU
LM, the docstring seq2seq, the stdlib tagger, and below the given LR, where the climb
had not finished). ``stalled``: 0.9, except that a final cooldown that starts with
increases blocked by the held-out rule (the last held-out value fed was worse than the
best so far, or lagged the training loss's pace: ``RuleState.eval_block``) ends at 0;
any other ends where 0.9's does. Without a held-out feed it is 0.9. Marked by ``eps``;
as :func:`prototypes.run_arms`, over every split of ``HELDOUT_SPLITS`` (the sixteen
seen ones)::

    python results/defaults/round37/stalled_zero.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round36"))

from prototypes import run_arms
from zero_end import towards_zero

from greedylr import rule

MARK = 7.3e-297
#: the marks the patch acts on (a later prototype that builds on this one adds its own)
MARKS = {MARK}
_anneal = rule._anneal


def _anneal_if_stalled(config: Any, state: Any) -> int:
    """0.9's cooldown observation; for the marked arm, towards 0 from its first one
    where the held-out rule blocked increases when it began."""
    first, stalled = not state.anneal_from, state.eval_block
    code = _anneal(config, state)
    if config.eps in MARKS and first and stalled and not state.anneal_to_zero:
        towards_zero(config, state)
    return code


def _patch() -> None:
    rule._anneal = _anneal_if_stalled


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "stalled", _patch)
