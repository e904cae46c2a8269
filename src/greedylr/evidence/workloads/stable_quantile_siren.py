"""Where is the p-quantile of a stable distribution, and how dense is it there? A SIREN
(Sitzmann et al. 2020: an MLP whose activations are sines, ``sin(omega (W x + b))``,
initialised as the paper prescribes) reads a point of Nolan's table, (alpha, beta,
logit p), and returns two numbers, the quantile (its asinh) and the log density there:
three sine layers of 128 (the first at omega 1, the others at 30: the paper's 30 in
the first layer is for an image's pixel coordinates, and fits this table worse), a
linear output; Adamax, batches of 128.

The data is the table of the standard stable distributions scipy ships with its tests
of ``levy_stable`` (computed with J. P. Nolan's STABLE program, S0 parameterization):
alpha 0.1 to 2, beta -1 to 1, eleven probabilities from 0.01 to 0.99, 25% of the points
held out at random (:func:`~greedylr.evidence.workloads.data.stable_quantiles`; 3,442
train / 1,147 held-out points), both targets standardized on the training points. At
small alpha the quantiles run to 5e19 and the densities down to 1e-23: the asinh and the
log make of them a smooth surface with steep walls. The held-out metric is the RMSE over
both standardized targets; on the scored half, predicting the training mean scores
0.97, a linear regression 0.83 and the nearest training point 0.22, this model 0.13.
At 3.16x its LR the model never leaves the mean (a cliff, as the TCN's RMSprop has).
The twelfth probe split."""

from __future__ import annotations

import math

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import stable_quantiles
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _SineLayer(nn.Module):
    """``sin(omega (W x + b))``, ``W`` drawn as SIREN's paper prescribes: uniform in
    +-1/fan_in for the first layer, +-sqrt(6/fan_in)/omega after it."""

    def __init__(self, fan_in: int, fan_out: int, omega: float, first: bool) -> None:
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / omega
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * self.linear(x))


class _Siren(nn.Module):
    def __init__(self, inputs: int = 3, width: int = 128, layers: int = 3, outputs: int = 2,
                 first_omega: float = 1.0, omega: float = 30.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            _SineLayer(inputs, width, first_omega, first=True),
            *(_SineLayer(width, width, omega, first=False) for _ in range(layers - 1)),
        )
        self.out = nn.Linear(width, outputs)
        bound = math.sqrt(6 / width) / omega
        nn.init.uniform_(self.out.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3] -> [B, 2]
        return self.out(self.layers(x))


def train(trial) -> None:
    fit_mse(trial, _Siren(), stable_quantiles(), 128, rmse_metrics)


register(
    Workload(
        name="stable_quantile_siren",
        train=train,
        task="regression",
        family="siren",
        data="Nolan's table of the stable distribution (shipped by scipy with its tests), "
             "alpha, beta and p -> the p-quantile and the density there (3,442 train / "
             "1,147 held-out points)",
        lr=0.002,
        steps=1000,
        optimizer="adamax",
        eval_every=100,
        metric="rmse",
        higher_is_better=False,
        quick_steps=500,
    )
)
