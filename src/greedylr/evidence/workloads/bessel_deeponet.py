"""Bessel functions of any order and argument: a deep operator network (DeepONet, Lu et
al. 2021: a branch network reads the function, a trunk network the point where it is
evaluated, and the output is the inner product of their features plus a bias); Adam,
as Lu et al. trained it.

The data is Boost's high-precision tables of ten Bessel functions (J, Y, I, K, their
derivatives, the spherical j and y) that scipy ships with its tests
(:func:`~greedylr.evidence.workloads.data.bessel_values`: orders from -1,185 to 1,185,
arguments to 38,941; 6,669 train / 2,223 held-out rows, held out at random): the
branch reads the function (an embedding of 16) and the asinh of the order, the trunk
the asinh of the argument, each an MLP of two SiLU layers of 64 to 32 features; the
target is the asinh of the value, standardized. The held-out metric is its RMSE. On the
scored half, the training mean scores 0.97, each function's mean 0.93, the nearest
training point of the same function 0.59, this model 0.41 at its LR, no better on its
training rows (0.38): it underfits, a low-rank product of order and argument features
against tables whose values span 1e-217 to 1e61. The fourteenth probe split."""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import BESSEL_TABLES, bessel_values
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


def _mlp(inputs: int, width: int = 64, features: int = 32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, width), nn.SiLU(), nn.Linear(width, width),
                         nn.SiLU(), nn.Linear(width, features))


class _DeepONet(nn.Module):
    def __init__(self, functions: int, embed: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(functions, embed)
        self.branch = _mlp(embed + 1)
        self.trunk = _mlp(1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3] -> [B, 1]
        branch = self.branch(torch.cat([self.embed(x[:, 0].long()), x[:, 1:2]], -1))
        return (branch * self.trunk(x[:, 2:3])).sum(-1, keepdim=True) + self.bias


def train(trial) -> None:
    fit_mse(trial, _DeepONet(len(BESSEL_TABLES)), bessel_values(), 256, rmse_metrics)


register(
    Workload(
        name="bessel_deeponet",
        train=train,
        task="regression",
        family="deeponet",
        data="Boost's Bessel-function tables (shipped with scipy's tests), a function, "
             "its order and argument -> its value (6,669 train / 2,223 held-out rows)",
        lr=0.01,
        steps=2000,
        optimizer="adam",
        eval_every=200,
        metric="rmse",
        higher_is_better=False,
        quick_steps=1000,
    )
)
