"""Predicting a computer's performance from its hardware: a Kolmogorov-Arnold network
(KAN, Liu et al. 2024, with the Gaussian radial basis functions of FastKAN instead of
B-splines): every edge of the network carries a learned function of one input, the sum
of a SiLU and a weighted set of bumps on a fixed grid; Adadelta.

The data is the relative performance of 190 distinct 1980s computers (Ein-Dor and
Feldmesser 1987; OpenML's dataset 561, which scikit-learn ships whole among its test
fixtures): six hardware figures -> the log of the published relative performance, 25% of
the machines held out (:func:`~greedylr.evidence.workloads.data.cpu_performance`). The
held-out metric is the RMSE of the standardized log performance (lower is better).
Round 16's probe split.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import CPU_FEATURES, cpu_performance
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _KANLayer(nn.Module):
    """``y_j = sum_i phi_ij(x_i)``, ``phi_ij(x) = w_ij silu(x) + sum_k c_ijk
    exp(-((x - g_k) / h)^2)`` on a grid ``g`` of ``grid`` points over ``[-2, 2]``; the
    inputs layer-normed first (as FastKAN)."""

    grid: torch.Tensor

    def __init__(self, inputs: int, outputs: int, grid: int = 8) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(inputs)
        self.register_buffer("grid", torch.linspace(-2.0, 2.0, grid), persistent=False)
        self.width = 4.0 / (grid - 1)
        self.spline = nn.Linear(inputs * grid, outputs, bias=False)
        nn.init.normal_(self.spline.weight, std=0.1 / (inputs * grid) ** 0.5)
        self.base = nn.Linear(inputs, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(x)
        bumps = torch.exp(-(((z[..., None] - self.grid) / self.width) ** 2))
        return self.spline(bumps.flatten(1)) + self.base(nn.functional.silu(x))


class _KAN(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (len(CPU_FEATURES), 16, 16, 1)) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(_KANLayer(a, b)
                                      for a, b in itertools.pairwise(widths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def train(trial) -> None:
    fit_mse(trial, _KAN(), cpu_performance(), 16, rmse_metrics)


register(
    Workload(
        name="cpu_kan",
        train=train,
        task="regression",
        family="kan",
        data="UCI's Computer Hardware (shipped by scikit-learn), 6 hardware figures -> log "
             "relative performance (142 train / 48 held out distinct machines)",
        lr=0.316,
        steps=600,
        optimizer="adadelta",
        eval_every=60,
        metric="rmse",
        higher_is_better=False,
        quick_steps=300,
    )
)
