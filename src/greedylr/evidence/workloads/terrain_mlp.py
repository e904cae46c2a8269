"""Regression of a terrain's elevation from its map coordinates: an MLP on the raw
coordinates, SGD with momentum.

The data is matplotlib's sample digital elevation model of the Jacksboro fault, pooled 2x2
(172 x 201 points); 20% of the points are held out, and the held-out metric is the RMSE of
their standardized elevation (lower is better). Round 12's probe split.
"""

from __future__ import annotations

from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import terrain
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


def train(trial) -> None:
    data = terrain()
    model = nn.Sequential(
        nn.Linear(2, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(),
        nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 1),
    )
    fit_mse(trial, model, data, 128, rmse_metrics)


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
