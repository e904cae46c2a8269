"""Round 17 pilot, descriptive: decreases that follow each other without an increase in
between grow, the k-th such decrease multiplying the LR by ``factor ** k``.

The 0.6 rule lowers the LR by one ``factor`` (0.95) for every ``patience + 1`` (11)
steps that the smoothed loss does not improve: from 10x its right value down to 1x takes
45 decreases, about 500 steps, most of a run of the studies. A too-large LR whose loss
sits on a plateau (or a model that has stopped learning at its LR) is brought down at
that pace whatever the evidence, so the LR grid's 3.16x and 10x points are where the
rule loses most against the best-tuned cosine. Here a run of decreases accelerates:
after k decreases since the last increase (an undo or a held-out decrease does not end
the run), the next one multiplies by ``factor ** (k + 1)``, up to ``factor ** MAX_POWER``
(``ESCALATE_MAX``, default 8: 0.66 a decrease). After 10 stalled patience windows the LR
is 0.95 ** 45 = 0.1x where 0.6 has it at 0.6x. An increase ends the run. The blow-up
guard's own squared decreases are unchanged (they do not count here).

Marked by ``eps`` (the default is 0):

    ESCALATE_MAX=8 python results/defaults/round17/escalate.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import events as ev
from greedylr import rule

MAX_POWER = int(os.environ.get("ESCALATE_MAX", "8"))
MARK = 5e-299 + MAX_POWER * 1e-300  # one marker per cap: each is its own arm
_change = rule._change


def _patched_change(config: Any, state: Any, attempt: int, factor: float | None = None) -> Any:
    if config.eps != MARK:
        return _change(config, state, attempt, factor)
    run = getattr(state, "escalation", 0)
    if attempt == ev.INCREASE:
        state.escalation = 0
    elif attempt == ev.DECREASE and factor is None:  # not the blow-up guard's own
        state.escalation = run + 1
        factor = config.factor ** min(run + 1, MAX_POWER)
    return _change(config, state, attempt, factor)


def _patch() -> None:
    rule._change = _patched_change


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"eps": MARK}, _patch, f"escalate{MAX_POWER}")
