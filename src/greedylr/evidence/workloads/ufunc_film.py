"""What does numpy's ``f(x)`` return? An MLP over the input, conditioned on the function
by FiLM (Perez et al. 2018: feature-wise linear modulation, each hidden layer's features
scaled and shifted, ``(1 + gamma) h + beta``, by a linear map of the condition): the
function's embedding (16) gives the gammas and betas of three SiLU layers of 64 over
the input's asinh, a linear output; RMSprop, batches of 256.

The data is the validation sets numpy ships with its tests of its ufuncs' accuracy
(``numpy/_core/tests/data/umath-validation-set-*.csv``; BSD-3-Clause): float32 and
float64 inputs from subnormals to the largest finite values and the correctly rounded
outputs of 17 functions (arccos ... tanh; sin, cos and tan left out), the asinh of the
input -> the asinh of the output, both standardized, 25% of the rows held out at
random (:func:`~greedylr.evidence.workloads.data.ufunc_values`; 11,878 train / 3,960
held-out rows). The held-out metric is the RMSE of the standardized output; on the
scored half, the training mean scores 1.06, each function's mean 0.99, a linear
regression a function 0.67, the nearest training input of the same function 0.015 and
linear interpolation between the training inputs 0.0027; this model 0.076, far from
the last two (each function is one smooth curve in one variable, which interpolation
fits almost exactly). Its final RMSE moves by some 10% when its LR does by 0.14%
(0.0686 at 0.009986). The thirteenth probe split."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import UFUNCS, ufunc_values
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _FiLMNet(nn.Module):
    def __init__(self, conditions: int, width: int = 64, layers: int = 3,
                 embed: int = 16) -> None:
        super().__init__()
        self.layers, self.width = layers, width
        self.embed = nn.Embedding(conditions, embed)
        self.film = nn.Linear(embed, 2 * layers * width)
        nn.init.zeros_(self.film.weight)  # every function starts at the plain MLP
        nn.init.zeros_(self.film.bias)
        self.hidden = nn.ModuleList(nn.Linear(1 if i == 0 else width, width)
                                    for i in range(layers))
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2] -> [B, 1]
        gamma, beta = self.film(self.embed(x[:, 0].long())).view(
            -1, self.layers, 2, self.width).unbind(2)
        h = x[:, 1:]
        for i, layer in enumerate(self.hidden):
            h = F.silu((1 + gamma[:, i]) * layer(h) + beta[:, i])
        return self.out(h)


def train(trial) -> None:
    data = ufunc_values()
    fit_mse(trial, _FiLMNet(len(UFUNCS)), data, 256, rmse_metrics)


register(
    Workload(
        name="ufunc_film",
        train=train,
        task="regression",
        family="film",
        data="numpy's ufunc validation sets (shipped with its tests), a function and its "
             "input -> its output (11,878 train / 3,960 held-out rows)",
        lr=0.01,
        steps=2000,
        optimizer="rmsprop",
        eval_every=200,
        metric="rmse",
        higher_is_better=False,
        quick_steps=1000,
    )
)
