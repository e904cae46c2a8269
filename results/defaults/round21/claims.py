"""Round 21: the package's defaults against cosine on a split's held-out LR grid, with no
other arm (the ``heldout-lr-grid-<split>`` stage runs six; on the tenth split's slower
workloads the claims need two). Prints the tolerance against the best-tuned cosine, as
:mod:`prototypes` does; results in ``OUT/claims_grid_<split>.json`` (read, not rerun,
when there)::

    python results/defaults/round21/claims.py OUT SPLIT
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes


def _package() -> None:
    """The package as it is."""


def main(out: Path, split: str) -> None:
    from greedylr.evidence.defaults import heldout_lr_grid_specs

    specs = [s for s in heldout_lr_grid_specs(split) if s.schedule in ("cosine", "greedy")
             and dict(s.settings) == {"workload_feed_split": True}]
    prototypes.print_tolerance(
        split, prototypes._run(specs, out / f"claims_grid_{split}.json", _package))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
