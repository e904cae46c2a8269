"""Regression of a terrain's elevation from its map coordinates: an MLP on the raw
coordinates, SGD with momentum.

The data is matplotlib's sample digital elevation model of the Jacksboro fault, pooled 2x2
(172 x 201 points); 20% of the points are held out, and the held-out metric is the RMSE of
their standardized elevation (lower is better). Round 12's probe split.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import terrain
from greedylr.evidence.workloads.loop import (
    batch_sampler,
    rmse_metrics,
    run,
    split_evaluator,
)

__all__ = ["train"]



def train(trial) -> None:
    data = terrain()
    model = nn.Sequential(
        nn.Linear(2, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(),
        nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 1),
    )
    run(
        trial,
        model,
        batch_sampler(data.x_train, data.y_train, 128),
        lambda m, b: F.mse_loss(m(b[0]), b[1]),
        split_evaluator(trial, rmse_metrics, data.x_test, data.y_test),
    )


register(
    Workload(
        name="terrain_mlp",
        train=train,
        task="regression",
        family="mlp",
        data="matplotlib sample DEM jacksboro_fault_dem.npz, 172x201 (27,658 points train / "
             "6,914 held out)",
        lr=1.0,
        steps=400,
        optimizer="sgd",
        eval_every=40,
        metric="rmse",
        higher_is_better=False,
        quick_steps=200,
    )
)
