"""Round 41, after its decision (descriptive): GreedyLR 0.11 on the diffusion model of the
fifteenth probe split with the two knobs the caveats name for an LR at the edge of
stability, under the held-out protocol (the workload's LR, seeds 0-2, fed the validation
half, scored on the other): ``anneal_to_zero=True``, ``max_lr_ratio=1``, both. Prints
each arm's seed-mean final denoising MSE and the seeds'::

    python results/defaults/round41/ddpm_knobs.py OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from greedylr.evidence import workloads
from greedylr.studies import metrics as M
from greedylr.studies.runner import run_trials
from greedylr.studies.store import load_results
from greedylr.studies.trial import TrialSpec

ARMS = ({"anneal_to_zero": True}, {"max_lr_ratio": 1.0},
        {"anneal_to_zero": True, "max_lr_ratio": 1.0})


def main(out: Path) -> None:
    w = workloads.get("mnist_ddpm")
    specs = [TrialSpec.make(study="round41_ddpm_knobs", workload="mnist_ddpm",
                            schedule="greedy", optimizer=w.optimizer, seed=seed,
                            steps=w.steps, lr=w.lr, eval_every=w.eval_every,
                            settings={"workload_feed_split": True, **settings})
             for settings in ARMS for seed in (0, 1, 2)]
    run_trials(specs, out, jobs=2)
    rows: dict[str, list[float]] = {}
    for r in load_results(out):
        rows.setdefault(M.arm_of(r), []).append(M.final_metric(r))
    for arm, values in rows.items():
        print(f"{arm}: {np.mean(values):.4f} ({', '.join(f'{v:.4f}' for v in values)})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
