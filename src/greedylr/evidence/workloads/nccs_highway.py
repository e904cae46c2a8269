"""Regression with a highway network (Srivastava et al. 2015): an input layer, four
highway layers ``y = T(x) * relu(W x + b) + (1 - T(x)) * x`` with a learned sigmoid gate
``T`` (its bias started at -1, so each layer first carries its input), a linear output;
AdamW with weight decay 0.5.

The data is the noncentral chi-squared distribution's CDF as Boost's test suite
tabulates it (``boost.npz``, which scipy ships with its tests;
:func:`~greedylr.evidence.workloads.data.noncentral_chi2`): the logarithms of the
degrees of freedom, the noncentrality and the point -> P, 25% of the 3,200 rows held out
(2,400 train / 800 held out). The held-out metric is the RMSE of P (lower is better);
on the scored half, predicting the training mean scores 0.374, a linear regression on
the three inputs 0.210 and copying the nearest training row's P 0.083, this model
0.010. The weight decay, ``lr * 0.5`` of the weights a step, is strong: at 3.16x the LR
it holds the fit back (32% worse), at 0.316x the budget is too short (128% worse). The
eleventh probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import noncentral_chi2
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _Highway(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.h = nn.Linear(width, width)
        self.t = nn.Linear(width, width)
        nn.init.constant_(self.t.bias, -1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.t(x))
        return gate * torch.relu(self.h(x)) + (1 - gate) * x


class _HighwayNet(nn.Module):
    def __init__(self, inputs: int = 3, width: int = 64, layers: int = 4) -> None:
        super().__init__()
        self.inp = nn.Linear(inputs, width)
        self.layers = nn.Sequential(*(_Highway(width) for _ in range(layers)))
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3] -> [B, 1]
        return self.out(self.layers(self.inp(x)))


def train(trial) -> None:
    fit_mse(trial, _HighwayNet(), noncentral_chi2(), 64, rmse_metrics,
            optimizer_kwargs={"weight_decay": 0.5})


register(
    Workload(
        name="nccs_highway",
        train=train,
        task="regression",
        family="highway_network",
        data="Boost's noncentral chi-squared CDF table (shipped by scipy with its tests), "
             "log degrees of freedom, noncentrality and point -> P (2,400 train / 800 "
             "held-out rows)",
        lr=0.003,
        steps=800,
        optimizer="adamw",
        eval_every=80,
        metric="rmse",
        higher_is_better=False,
        quick_steps=400,
    )
)
