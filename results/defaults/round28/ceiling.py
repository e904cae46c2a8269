"""Round 28 prototype, descriptive: a held-out cut that the training loss cannot climb
back over.

Under 0.8 a held-out value that is worse than the best so far, or lags the training
loss (``eval_pace``), blocks increases and cuts the LR by ``eval_factor``; once a later
held-out value keeps pace the block ends and the rule climbs again, on the training
loss alone, to where the held-out value complained and above. Here each cut also lowers
every group's upper bound for the rest of the run (the final cooldown aside):

- ``complained``: to the LR the held-out value complained at (the LR before the cut): the
  rule may climb back, not above;
- ``cut``: to the LR after the cut: a ratchet, the rule's increases stay below every
  level a held-out value complained at, times ``eval_factor``;
- ``search`` (``round28/arm.py search``): the ratchet, and a held-out value that keeps pace
  (after the first) also divides the LR by ``eval_factor``, up to the bound: the
  held-out value moves the LR both ways, a line search a cut ends;
- ``strict`` (``round28/arm.py strict``): ``search`` whose raise needs the held-out value
  to have fallen since the best before it, relatively, at least as much as the smoothed
  training loss since the last held-out value (full pace, not ``eval_pace``'s half): a
  model that does not yet overfit, as one at a too-small LR;
- ``squared`` (``round28/arm.py squared``), no ceiling: each held-out cut that follows a cut
  (no value keeping pace between them) squares the factor of the one before, as the
  blow-up guard's decreases do (0.7, 0.49, 0.24, 0.058, then 0.003 each time), not
  below the lower bound.
- ``both`` (``round28/arm.py both``): ``search`` whose cuts are ``squared``'s.

Training-loss decreases, the blow-up guard and the final cooldown are 0.8's. Marked by
``eps`` (the default is 0); ``heldout`` and ``grid`` as
:func:`prototypes.run_arms`::

    python results/defaults/round28/ceiling.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

from greedylr import rule
from greedylr.config import BLOWUP_SQUARINGS

MARKS = {"complained": 3e-298, "cut": 5e-298, "search": 9e-298, "squared": 1.1e-297,
         "strict": 1.3e-297, "both": 1.5e-297}
ARMS: tuple[tuple[str, dict[str, Any]], ...] = tuple(
    ("greedy", {"eps": MARKS[arm]}) for arm in ("complained", "cut"))
_observed_eval = rule._observed_eval


def compound_cut(config: Any, state: Any, cuts: int) -> None:
    """After a held-out cut (``eval_factor``), lower the LRs further so that the cut
    takes ``eval_factor ** (2 ** cuts)`` in all, squared at most ``BLOWUP_SQUARINGS``
    times as the blow-up guard's decreases are, not below the lower bounds."""
    rule._lower(state, config.eval_factor ** (2 ** min(cuts, BLOWUP_SQUARINGS) - 1),
                config.eps)


def _patched_observed_eval(config: Any, state: Any, value: float) -> rule.Decision:
    arm = {v: k for k, v in MARKS.items()}.get(config.eps)
    before, first = list(state.lrs), state.eval_best is None
    best, last = state.eval_best, state.eval_train
    decision = _observed_eval(config, state, value)
    if arm is None:
        return decision
    cuts = state.__dict__.get("eval_cuts", 0)
    kept_pace = state.eval_best == value and not state.eval_block
    if arm in ("squared", "both") and state.lrs != before:
        compound_cut(config, state, cuts)
        state.__dict__["eval_cuts"] = cuts + 1
        if arm == "both":
            state.max_lrs = [min(m, c) for m, c in zip(state.max_lrs, state.lrs)]
        return rule.Decision(tuple(state.lrs), decision.smoothed, decision.events)
    if arm in ("squared", "both") and kept_pace:
        state.__dict__["eval_cuts"] = 0
    if arm == "squared":
        return decision
    if state.lrs != before:  # a held-out cut moved the LR
        ceiling = before if arm == "complained" else state.lrs
        state.max_lrs = [min(m, c) for m, c in zip(state.max_lrs, ceiling)]
    elif (arm in ("search", "strict", "both") and not first and not state.anneal_from
          and kept_pace
          and (arm != "strict" or _full_pace(config, best, value, last, state.smoothed))):
        state.lrs = [min(lr / config.eval_factor, m) for lr, m in zip(state.lrs, state.max_lrs)]
        return rule.Decision(tuple(state.lrs), state.smoothed)
    return decision


def _full_pace(config: Any, best: float | None, value: float, last: float | None,
               now: float | None) -> bool:
    """Whether the held-out value fell from ``best`` (relatively) at least as much as the
    smoothed training loss from ``last`` to ``now``."""
    if best is None or last is None or now is None or not best or not last:
        return False
    held = (best - value if config.eval_mode == "min" else value - best) / abs(best)
    train = (last - now if config.mode == "min" else now - last) / abs(last)
    return held >= train


def _patch() -> None:
    rule._observed_eval = _patched_observed_eval


if __name__ == "__main__":
    run_arms(sys.argv[1:], ARMS, "ceiling", _patch)
