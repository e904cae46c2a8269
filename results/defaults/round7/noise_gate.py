"""Round 7, after the decision, descriptive: a prototype of increases that need
significant progress (not in the package; nothing was adopted from it).

"Better" for the increase streak needs the smoothed loss below the reference by more
than ``noise_threshold`` standard errors; better by less is neutral (no counter moves,
the reference stays), so slow steady progress still counts once it has added up. "Not
better" (and so decreases) is as today. Patched into ``greedylr.rule._decide`` in each
worker, run on all three splits beside cosine and the 0.2 defaults (which reproduce
their reports exactly), with ``noise_threshold=1`` as the arm's mark:

    python results/defaults/round7/noise_gate.py heldout runs/r7/noise_gate SPLIT

(once per split: tune, check, fresh; the protocols of ``../prototypes.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from greedylr import events as ev
from greedylr import rule

_original = rule._decide


def _patched(config, state, finite):
    if not config.noise_threshold or not finite:
        return _original(config, state, finite)
    step = state.step
    start = None if config.total_steps is None else config.anneal_start
    if step <= config.warmup or (start is not None and step >= start) or state.payoff_left > 0:
        return _original(config, state, finite)
    if state.hold > 0:
        return _original(config, state, finite)
    smoothed, reference = state.smoothed, state.reference
    margin = rule._noise_margin(config, state)
    better_at_all = rule._is_better(config, smoothed, reference)
    significant = rule._is_better(config, smoothed + margin, reference)
    if better_at_all and not significant:
        return rule._NOTHING  # neutral
    if significant:
        state.reference = smoothed
        state.num_good += 1
        state.num_bad = 0
    else:
        state.num_bad += 1
        state.num_good = 0
    up = rule._effective_up_patience(config, state) if state.penalty else config.up_patience
    if state.num_good > up and state.eval_block:
        state.num_good = 0
    elif state.num_good > up:
        state.num_good = 0
        code, changed = rule._change(config, state, ev.INCREASE)
        return code, reference, changed
    elif state.num_bad > config.patience:
        state.num_bad = 0
        if config.compare == "recent_best":
            state.reference = smoothed
        code, changed = rule._change(config, state, ev.DECREASE)
        return code, reference, changed
    return rule._NOTHING


def _init():
    rule._decide = _patched


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import prototypes

    prototypes.main(sys.argv[1:], {"noise_threshold": 1.0}, _init, "noise_gate")
