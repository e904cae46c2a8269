"""Round 8, descriptive: Rprop on the LR (Riedmiller and Braun 1993), not in the package;
nothing was adopted from it.

Each move in the same direction as the last one is larger (``factor ** m``, ``m``
doubling up to 8); a move the other way, or one clipped at a bound, starts again at
``m = 1``. For a badly chosen LR, the climb or descent accelerates; around a good one,
alternating moves stay at ``factor``. Marked by ``eps=1e-300`` (the default is 0):

    python results/defaults/round8/rprop.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import events as ev
from greedylr import rule

MARK: dict[str, Any] = {"eps": 1e-300}
GROWTH, LARGEST = 2.0, 8.0
_original = rule._change
_scaled: dict[tuple[Any, float], Any] = {}  # (config, m) -> the config with factor ** m


def _patched(config: Any, state: Any, attempt: int) -> Any:
    if config.eps != MARK["eps"]:
        return _original(config, state, attempt)
    if attempt not in (ev.INCREASE, ev.DECREASE):  # an undo: the streak ends
        state.streak = (0, 1.0)
        return _original(config, state, attempt)
    # kept on the state (an id could be a finished trial's): (last move, its exponent)
    last, m = getattr(state, "streak", (0, 1.0))
    m = min(m * GROWTH, LARGEST) if last == attempt else 1.0
    faster = _scaled.setdefault((config, m), replace(config, factor=config.factor ** m))
    code, changed = _original(faster, state, attempt)
    state.streak = (attempt, 1.0 if code & ev.CLIPPED else m)
    return code, changed


def _patch() -> None:
    rule._change = _patched


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], MARK, _patch, "rprop")
