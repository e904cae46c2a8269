"""Round 36 prototype, descriptive: every final cooldown ends at 0, as cosine's does.

Under 0.9 a final cooldown ends at the lower bound (10% of the initial LR) unless it
starts with every group at that bound (``floor_anneals_to_zero``) or in a blow-up; on the
sequence models where 0.9 reaches cosine's training loss and ends 3-4% behind on held-out
data, its LR ends at 0.1x where cosine's ends at 0 (round 35's reading). ``zero``: 0.9,
except that every final cooldown ends at 0 (the 1-sqrt shape from wherever the LR
stands; the bound still holds before the cooldown). Round 14 measured the same under 0.4
on 24 workloads (worse on 15 by up to 5%); 0.9's held-out rule is another. Marked by
``eps``; as :func:`prototypes.run_arms`, over every split of ``HELDOUT_SPLITS`` (the
sixteen seen ones)::

    python results/defaults/round36/zero_end.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

from greedylr import rule
from greedylr.config import _anneal_shape

MARK = 6.7e-297
_anneal = rule._anneal


def towards_zero(config: Any, state: Any) -> None:
    """The cooldown's first observation again, towards 0 instead of the lower bounds;
    the later ones go towards 0 by themselves (``state.anneal_to_zero``)."""
    state.anneal_to_zero = True
    k = min(state.step - config.anneal_start, config.anneal_steps)
    shape = _anneal_shape(config.anneal_shape, k / config.anneal_steps)
    state.lrs = [a * shape for a in state.anneal_from]


def _anneal_to_zero(config: Any, state: Any) -> int:
    """0.9's cooldown observation; for the marked arm, towards 0 from its first one."""
    first = not state.anneal_from
    code = _anneal(config, state)
    if config.eps == MARK and first and not state.anneal_to_zero:
        towards_zero(config, state)
    return code


def _patch() -> None:
    rule._anneal = _anneal_to_zero


if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARK}),), "zero", _patch)
