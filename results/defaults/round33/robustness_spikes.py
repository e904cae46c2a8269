"""Round 33, descriptive: would the spike guard (``spike_ratio``) act in the robustness
study? Counts the runs of ``results/robustness/traces.npz`` (every schedule's observed
losses, 200 steps, corrupted batches included) whose raw loss is above ``RATIO`` times its
first value (or not finite) on two steps in a row, where the guard would cut::

    python results/defaults/round33/robustness_spikes.py [results/robustness/traces.npz]
"""
from __future__ import annotations

import sys

import numpy as np

RATIO = 10.0


def main(path: str) -> None:
    observed = np.load(path)["observed"].astype(np.float64)
    first = observed[:, :1]
    spiking = ~np.isfinite(observed) | (observed > RATIO * first)
    cut = (spiking[:, 1:] & spiking[:, :-1]).any(axis=1)
    known = (np.isfinite(first) & (first > 0))[:, 0]
    print(f"runs where a spike guard at {RATIO:g} would cut: {int((cut & known).sum())} of "
          f"{int(known.sum())} (largest raw loss over the first: "
          f"{np.nanmax(observed[known] / first[known]):.3g})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/robustness/traces.npz")
