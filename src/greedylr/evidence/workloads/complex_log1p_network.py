"""``log1p(z)`` and ``expm1(z)`` of a complex ``z``: a complex-valued network (Trabelsi
et al. 2018: complex weights and activations, trained through their real and imaginary
parts): the argument as one complex number, plus a complex embedding of the function
in the first layer, through three complex linear layers of 64 with modReLU activations
(Arjovsky et al. 2016: the modulus shifted by a learned bias and rectified, the phase
kept), a complex output; RAdam, batches of 64.

The data is the reference values scipy tests its complex ``log1p`` and ``expm1``
against (:func:`~greedylr.evidence.workloads.data.complex_values`: 2,296 distinct
arguments within 4 of 0, computed with mpmath; every value's components' asinh,
standardized; 3,444 train / 1,148 held-out rows, whole arguments held out). The held-out metric is
the RMSE of the value's two standardized components. The fifteenth probe split."""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import complex_values
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _ModReLU(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        modulus = z.abs()
        return torch.relu(modulus + self.bias) * z / modulus.clamp_min(1e-6)


class _ComplexNet(nn.Module):
    def __init__(self, functions: int, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.randn(functions, width, dtype=torch.cfloat) * 0.1)
        self.hidden = nn.ModuleList(nn.Linear(1 if i == 0 else width, width,
                                              dtype=torch.cfloat) for i in range(layers))
        self.act = nn.ModuleList(_ModReLU(width) for _ in range(layers))
        self.out = nn.Linear(width, 1, dtype=torch.cfloat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3] -> [B, 2]
        h = torch.complex(x[:, 1:2], x[:, 2:3])
        for i, (layer, act) in enumerate(zip(self.hidden, self.act, strict=True)):
            h = layer(h) + (self.embed[x[:, 0].long()] if i == 0 else 0)
            h = act(h)
        return torch.view_as_real(self.out(h)).flatten(1)


def train(trial) -> None:
    fit_mse(trial, _ComplexNet(2), complex_values(), 64, rmse_metrics)


register(
    Workload(
        name="complex_log1p_network",
        train=train,
        task="regression",
        family="complex_valued_network",
        data="scipy's mpmath reference values of the complex log1p and expm1 (shipped "
             "with its tests), a function and an argument -> its value (3,444 train / "
             "1,148 held-out rows)",
        lr=0.1,
        steps=800,
        optimizer="radam",
        eval_every=80,
        metric="rmse",
        higher_is_better=False,
        quick_steps=400,
    )
)
