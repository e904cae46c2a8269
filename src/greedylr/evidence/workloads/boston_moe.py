"""Predicting a Boston neighbourhood's house prices: a mixture of experts (Jacobs et al.
1991), a softmax gate over four small MLP experts whose outputs it weighs per input (a
dense, soft mixture: every expert sees every input, no auxiliary load-balancing loss);
torch's ASGD with its defaults, whose averaging starts only after 10^6 steps: here, SGD
without momentum and a step that decays slowly.

The data is the Boston housing data (Harrison and Rubinfeld 1978, as mlxtend ships it:
506 census tracts): 12 of the 13 neighbourhood figures (the ``B`` column, a racially
derived feature, is dropped) -> the log of the median home value, 25% of the tracts held
out (:func:`~greedylr.evidence.workloads.data.boston_housing`). The held-out metric is
the RMSE of the standardized log price (lower is better). The seventh probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import BOSTON_FEATURES, boston_housing
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


def _expert(inputs: int, hidden: int) -> nn.Module:
    """An MLP ``inputs -> hidden -> hidden -> 1`` with SiLU activations."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(),
                         nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, 1))


class _MixtureOfExperts(nn.Module):
    """``y = sum_e g_e(x) f_e(x)``: a softmax gate ``g = softmax(W x + b)`` over the
    experts ``f_e`` (dense: every expert runs on every input)."""

    def __init__(self, inputs: int = len(BOSTON_FEATURES), experts: int = 4,
                 hidden: int = 32) -> None:
        super().__init__()
        self.gate = nn.Linear(inputs, experts)
        self.experts = nn.ModuleList(_expert(inputs, hidden) for _ in range(experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.gate(x), dim=-1)  # (batch, experts)
        outputs = torch.cat([expert(x) for expert in self.experts], dim=-1)
        return (weights * outputs).sum(-1, keepdim=True)


def train(trial) -> None:
    fit_mse(trial, _MixtureOfExperts(), boston_housing(), 32, rmse_metrics)


register(
    Workload(
        name="boston_moe",
        train=train,
        task="regression",
        family="mixture_of_experts",
        data="Boston housing (shipped by mlxtend), 12 neighbourhood figures (B dropped) -> "
             "log median home value (380 train / 126 held out tracts)",
        lr=0.3,
        steps=1000,
        optimizer="asgd",
        eval_every=100,
        metric="rmse",
        higher_is_better=False,
        quick_steps=500,
    )
)
