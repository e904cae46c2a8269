"""Round 8, descriptive: GreedyLR's decisions move a multiplier on cosine told the budget
(not in the package; nothing was adopted from it).

The rule runs as without a budget (no final cooldown) on an unscaled LR ``g``; the LR
applied is ``g`` times cosine's shape after the warmup, so that at a well-tuned LR it
decays as cosine does and the loss-driven moves correct a badly chosen one. A held-out
decrease (``observe_eval``) carries over to ``g``. ``gated`` adds round 7's noise gate
(``round7/noise_gate.py``: an increase needs progress beyond one standard error of the
loss noise); ``no_eval`` leaves out the held-out rule (``eval_patience=None``). Marked
by ``anneal_fraction=0, anneal_shape="cosine"``. ``built`` is ``no_eval`` as 0.3 built it
into the package (``base_schedule="cosine", eval_patience=None``), run unpatched;
``built_patience30`` is ``built`` with ``patience=30`` (round 11's 3x budget):

    python results/defaults/round8/relative_cosine.py VARIANT PROTOCOL OUT SPLIT [STORED]

(VARIANT: plain, gated, no_eval, built or built_patience30; PROTOCOL: heldout, grid or
heldout_x3, as in ``prototypes.py``.)
"""
from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round7"))

import noise_gate
import prototypes

from greedylr import rule

MARK: dict[str, Any] = {"anneal_fraction": 0.0, "anneal_shape": "cosine"}
_original = rule._decide
_inner = _original
_no_budget: dict[Any, Any] = {}  # config -> the same without a budget


def _patched(config: Any, state: Any, finite: bool) -> Any:
    if not (config.total_steps and config.anneal_fraction == 0.0
            and config.anneal_shape == "cosine"):
        return _original(config, state, finite)
    # kept on the state (an id could be a finished trial's): (g, the LRs applied)
    if hasattr(state, "unscaled"):  # back to g; a held-out decrease since scales it too
        g, applied = state.unscaled
        state.lrs = [x * (now / was if was > 0 else 1.0)
                     for x, now, was in zip(g, state.lrs, applied)]
    plain = _no_budget.setdefault(config, replace(config, total_steps=None))
    outcome = _inner(plain, state, finite)
    g, w, total = list(state.lrs), config.warmup, config.total_steps
    progress = min(1.0, (state.step - w) / max(1, total - w)) if state.step > w else 0.0
    state.lrs = [x * 0.5 * (1.0 + math.cos(math.pi * progress)) for x in g]
    state.unscaled = (g, list(state.lrs))
    return outcome


def _patch_plain() -> None:
    rule._decide = _patched


def _patch_gated() -> None:
    global _inner
    _inner = noise_gate._patched
    rule._decide = _patched


def _unpatched() -> None:
    """The package as it is: for ``built``, the knob that 0.3 made of ``no_eval``."""


VARIANTS = {"plain": (MARK, _patch_plain),
            "gated": ({**MARK, "noise_threshold": 1.0}, _patch_gated),
            "no_eval": ({**MARK, "eval_patience": None}, _patch_plain),
            "built": ({"base_schedule": "cosine", "eval_patience": None}, _unpatched),
            # round 11: on 3x the budget, with the patience scaled as the budget (10 -> 30)
            "built_patience30": ({"base_schedule": "cosine", "eval_patience": None,
                                  "patience": 30}, _unpatched)}


if __name__ == "__main__":
    settings, patch = VARIANTS[sys.argv[1]]
    prototypes.main(sys.argv[2:], settings, patch, f"relative_cosine_{sys.argv[1]}")
