"""Round 10 pilot, descriptive: cosine's decay from the end of the rule's first climb (not
in the package).

The rule's own LR ``g`` moves as without a budget (no final cooldown, no held-out rule), as
in round 8's relative cosine; the LR applied is ``g`` times cosine's decay, but the decay
starts at the rule's first decrease after the warmup (where raising the LR stopped paying),
or at the start of the default final cooldown (80% of the budget) if none came sooner, and
spans the rest of the budget. At a well-tuned LR the first climb ends early and the run
follows a cosine from there; at a too-small one the climb goes on, as the defaults', and the
decay is short. Marked by ``eps=1e-299`` (the default is 0):

    python results/defaults/round10/climb_then_cosine.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import events as ev
from greedylr import rule

MARK: dict[str, Any] = {"eps": 1e-299, "eval_patience": None}
_original = rule._decide
_no_budget: dict[Any, Any] = {}  # config -> the same without a budget


def _patched(config: Any, state: Any, finite: bool) -> Any:
    if config.eps != MARK["eps"] or not config.total_steps:
        return _original(config, state, finite)
    if hasattr(state, "unscaled"):  # back to g (nothing else moves the LRs without eval)
        state.lrs = state.unscaled
    plain = _no_budget.setdefault(config, replace(config, total_steps=None))
    outcome = _original(plain, state, finite)
    total = config.total_steps
    # kept on the state (an id could be a finished trial's): where the decay started
    start = getattr(state, "decay_start", None)
    latest = total - int(config.anneal_fraction * total)
    if start is None and state.step > config.warmup and (
            outcome[0] & ev.DECREASE or state.step >= latest):
        start = state.decay_start = state.step
    g = list(state.lrs)
    if start is not None:
        progress = min(1.0, (state.step - start) / max(1, total - start))
        state.lrs = [x * 0.5 * (1.0 + math.cos(math.pi * progress)) for x in g]
    state.unscaled = g
    return outcome


def _patch() -> None:
    rule._decide = _patched


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], MARK, _patch, "climb_then_cosine")
