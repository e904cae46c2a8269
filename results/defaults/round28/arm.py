"""Round 28 prototype, descriptive: one arm of ``round28/ceiling.py`` (its patch), by
name: ``search`` (the held-out value moves the LR both ways), ``strict`` (the same, a
raise at full pace only), ``squared`` (consecutive held-out cuts square their factor),
``both`` (``search`` with ``squared``'s cuts) or ``base`` (0.8 itself, unpatched: its
grid with the traces kept)::

    python results/defaults/round28/arm.py {base,search,strict,squared,both} {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from ceiling import MARKS, _patch
from prototypes import run_arms

if __name__ == "__main__":
    arm = sys.argv[1]
    settings = {} if arm == "base" else {"eps": MARKS[arm]}
    run_arms(sys.argv[2:], (("greedy", settings),), arm, _patch)
