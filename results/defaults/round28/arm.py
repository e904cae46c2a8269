"""Round 28 prototype, descriptive: one arm of ``round28/ceiling.py`` (its patch), by
name: ``search`` (the held-out value moves the LR both ways) or ``squared`` (consecutive
held-out cuts square their factor)::

    python results/defaults/round28/search.py {search,squared} {heldout,grid} OUT
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
    run_arms(sys.argv[2:], (("greedy", {"eps": MARKS[arm]}),), arm, _patch)
