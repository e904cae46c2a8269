"""Round 13 pilot, descriptive: the held-out rule's own knobs, run through the package.

Since 0.2 every worse held-out value halves the LR (``eval_patience=0, eval_factor=0.5``);
rounds 7 and 12 found the defaults losing where that fires on a noisy held-out curve (the
membrane forecaster sat at its floor by 75% of the run). Neither knob was ever varied:

- ``patience1``: ``eval_patience=1`` (two worse values in a row before the LR comes down;
  the first still blocks increases);
- ``factor07``: ``eval_factor=0.7``.

Round 13 made ``eval_factor=0.7`` the default (0.4.0), so since then the runs' ``greedy``
arm is ``factor07`` and ``factor05`` (``eval_factor=0.5``) is 0.3's rule beside it.

    python results/defaults/round13/eval_knobs.py VARIANT PROTOCOL OUT SPLIT [STORED]

(PROTOCOL: heldout, grid or heldout_xK, as in ``prototypes.py``.)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes


def _unpatched() -> None:
    """The package as it is: both knobs exist."""


VARIANTS = {"patience1": {"eval_patience": 1}, "factor07": {"eval_factor": 0.7},
            "factor05": {"eval_factor": 0.5}}

if __name__ == "__main__":
    prototypes.main(sys.argv[2:], VARIANTS[sys.argv[1]], _unpatched, f"eval_{sys.argv[1]}")
