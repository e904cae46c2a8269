"""Round 15: the blow-up guard (``blowup_ratio``, a knob of the package) beside cosine and
the 0.4 defaults, under the defaults study's protocols (``prototypes.py``).

Round 14's worst failure: a super-resolution CNN at 3.2x-10x of its SGD LR blows up (the
loss from 0.08 to thousands), and ``compare="recent_best"`` reads the recovery from that
height as progress and raises the LR again; the final cooldown then ends at the lower
bound, 0.1x of a far too large LR, where the damaged model does not recover. With
``blowup_ratio=r``, a smoothed loss above r times its first value starts a blow-up; while
it lasts (until the loss is back below its first value) every observation counts as
worse, each decrease squares the factor of the one before, and a final cooldown that
starts in one ends at 0 (``GreedyConfig``'s docstring).

    python results/defaults/round15/blowup.py {heldout,grid} OUT SPLIT [STORED]

``BLOWUP_RATIO`` (environment; default 100, round 15's candidate) sets r. Since 0.5 the
guard is a default, so the ``greedy`` arm beside it is 0.5's rule: ``BLOWUP_RATIO=none``
runs 0.4's (``blowup_ratio=None``) as the arm instead, to repeat round 15's comparison.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

_RATIO = os.environ.get("BLOWUP_RATIO", "100").lower()
RATIO = None if _RATIO == "none" else float(_RATIO)
TAG = f"blowup{'none' if RATIO is None else f'{RATIO:g}'}"


def _unpatched() -> None:
    """The package as it is: the knob exists."""


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"blowup_ratio": RATIO}, _unpatched, TAG)
