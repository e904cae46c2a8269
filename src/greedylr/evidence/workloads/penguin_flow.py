"""Density estimation of the Palmer penguins' body measurements: a normalizing flow
(RealNVP, Dinh et al. 2017: affine coupling layers) maps the four measurements to a
standard normal and scores them by the change of variables, RMSprop.

The data is the Palmer penguins (342 penguins with all four measurements, three species
that the flow does not see, so the density it must learn has three modes), 25% of the
penguins held out (:func:`~greedylr.evidence.workloads.data.penguins`). The held-out
metric is the negative log-likelihood in nats per penguin of the standardized
measurements (lower is better; a Gaussian fitted to the training penguins scores 4.45).
Round 15's probe split.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import penguins
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["train"]


class _Coupling(nn.Module):
    """``x_b -> x_b * exp(s(x_a)) + t(x_a)`` for the coordinates ``b`` outside the mask,
    ``x_a`` (the masked ones) unchanged; ``s`` bounded by a tanh. Returns the output and
    the log-determinant of the Jacobian (the sum of ``s``)."""

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        dim = mask.numel()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 2 * dim))
        self.scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x * self.mask).chunk(2, dim=-1)
        s = self.scale * torch.tanh(s) * (1 - self.mask)
        y = x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, s.sum(dim=-1)


class _RealNVP(nn.Module):
    """Affine couplings on alternating halves of the coordinates; its output is each
    example's log-density (under a standard normal base)."""

    def __init__(self, dim: int = 4, layers: int = 6, hidden: int = 64) -> None:
        super().__init__()
        masks = [torch.tensor([(j + i) % 2 for j in range(dim)], dtype=torch.float32)
                 if i % 4 < 2 else
                 torch.tensor([float(j < dim // 2) if i % 2 == 0 else float(j >= dim // 2)
                               for j in range(dim)])
                 for i in range(layers)]
        self.couplings = nn.ModuleList(_Coupling(m, hidden) for m in masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logdet = torch.zeros(x.shape[0], device=x.device)
        for coupling in self.couplings:
            x, ld = coupling(x)
            logdet = logdet + ld
        base = -0.5 * (x**2).sum(dim=-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)
        return base + logdet


def nll_metrics(model: nn.Module, x: torch.Tensor, _species: torch.Tensor) -> dict[str, float]:
    """A density model's held-out negative log-likelihood (nats per example), as ``nll``
    and as ``loss``."""
    nll = -model(x).mean().item()
    return {"nll": nll, "loss": nll}


def train(trial) -> None:
    data = penguins()
    run(trial, _RealNVP(), batch_sampler(data.x_train, data.y_train, 32),
        lambda m, b: -m(b[0]).mean(),
        split_evaluator(trial, nll_metrics, data.x_test, data.y_test))


register(
    Workload(
        name="penguin_flow",
        train=train,
        task="density_estimation",
        family="normalizing_flow",
        data="Palmer penguins (shipped by scikit-learn), the density of 4 body measurements "
             "(256 train / 86 held out penguins)",
        lr=1e-3,
        steps=300,
        optimizer="rmsprop",
        eval_every=30,
        metric="nll",
        higher_is_better=False,
        quick_steps=150,
    )
)
