"""The analytic families of the robustness study: test functions of a 10-d point.

For these the "weights" are the query point ``z`` and there is no data: a perturbation
jitters or kicks the point at which loss and gradient are taken, and a shard shift moves
the optimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["ANALYTIC", "DIM", "KICK_SCALE", "NOISE_SCALE", "SHIFT"]

DIM = 10
_QUAD_CURVATURE = torch.logspace(0, 2, DIM)  # condition number 100


def _quadratic(z: Tensor) -> Tensor:
    return 0.5 * (_QUAD_CURVATURE * z * z).sum(-1)


def _rosenbrock(z: Tensor) -> Tensor:
    return (100.0 * (z[..., 1:] - z[..., :-1] ** 2) ** 2 + (1.0 - z[..., :-1]) ** 2).sum(-1)


def _rastrigin(z: Tensor) -> Tensor:
    return 10.0 * z.shape[-1] + (z * z - 10.0 * torch.cos(2 * math.pi * z)).sum(-1)


def _ackley(z: Tensor) -> Tensor:
    n = z.shape[-1]
    a = -20.0 * torch.exp(-0.2 * torch.sqrt((z * z).sum(-1) / n + 1e-12))
    return a - torch.exp(torch.cos(2 * math.pi * z).sum(-1) / n) + 20.0 + math.e


ANALYTIC: dict[str, tuple[Callable[[Tensor], Tensor], float]] = {
    "quadratic": (_quadratic, 2.0),
    "rosenbrock": (_rosenbrock, 2.0),
    "rastrigin": (_rastrigin, 5.12),
    "ackley": (_ackley, 5.0),
}
"""Name -> (function of ``[..., 10]`` points, half-width of the initialisation box)."""

NOISE_SCALE = 0.1  # Gaussian jitter of a query point at strength 1 (coordinates)
KICK_SCALE = 1.0  # displacement of a corrupted query point at strength 1
SHIFT = 1.0  # the optimum moves by strength * this, in every coordinate
