"""What is the UTC offset in a place the model has no zone for, in January and in July of
a given year? A radial basis function network (Broomhead & Lowe 1988; Moody & Darken
1989): Gaussian units, each with a learned centre in (position on the sphere, year) and a
learned width, and a linear layer over their activations; Adam.

The data is the IANA time zone database (public domain; as the ``tzdata`` package,
which pandas requires, ships it): the 418 zones of its ``zone.tab``, each zone's
principal city and its UTC offsets on 15 January and 15 July of every year 1970-2025,
25% of the zones held out with all their years
(:func:`~greedylr.evidence.workloads.data.time_zones`; 17,584 train / 5,824 held-out
rows, 314 / 104 zones): a held-out zone is predicted from the zones around it. The
held-out metric is the RMSE of the two offsets in hours (lower is better); the fed and
the scored half are different zones. On the scored half, predicting the training rows'
mean offsets scores 5.32, a linear regression on the same four inputs 3.46, and copying
the offsets of the nearest training row (city and year) 2.23: better than this model.

The linear layer counts quarter hours (all but 12 of the offsets are multiples of 15
minutes; its output is divided by 4): the weights it needs are then large for the LR,
so a small LR underfits within the budget, and a large one scatters the units' centres
and widths. The held-out metric's optimum is still broad: at 0.316x and 3.16x cosine's
LR it is 5% and 8% worse. The ninth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import time_zones
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _RBFNetwork(nn.Module):
    """``units`` Gaussian units ``exp(-exp(s_k) |x - c_k|^2)``, their centres ``c_k``
    initialised at random training inputs and their log precisions ``s_k`` at 0 -> a
    linear layer (in quarter hours) -> ``/ 4``: hours."""

    def __init__(self, inputs: torch.Tensor, units: int = 512, outputs: int = 2) -> None:
        super().__init__()
        pick = torch.randperm(len(inputs))[:units]
        self.centres = nn.Parameter(inputs[pick].clone())
        self.log_precision = nn.Parameter(torch.zeros(units))
        self.head = nn.Linear(units, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = torch.cdist(x, self.centres).square()
        return self.head(torch.exp(-distance * self.log_precision.exp())) / 4


def train(trial) -> None:
    data = time_zones()
    fit_mse(trial, _RBFNetwork(data.x_train), data, 64, rmse_metrics)


register(
    Workload(
        name="time_zone_rbf",
        train=train,
        task="regression",
        family="rbf_network",
        data="the IANA time zone database (shipped by tzdata, which pandas requires), a "
             "zone's city and a year -> its UTC offsets in January and July (314 train / "
             "104 held-out zones, 1970-2025)",
        lr=0.1,
        steps=600,
        optimizer="adam",
        eval_every=60,
        metric="rmse",
        higher_is_better=False,
        quick_steps=300,
    )
)
