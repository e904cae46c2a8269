"""Round 28 prototype, descriptive: the ``search`` arm of ``round28/ceiling.py`` (its
patch), which both move the LR on the held-out value::

    python results/defaults/round28/search.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from ceiling import MARKS, _patch
from prototypes import run_arms

if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"eps": MARKS["search"]}),), "search", _patch)
