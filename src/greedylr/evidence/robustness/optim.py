"""Adam over the weights of many runs at once, each run with its own learning rate."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from greedylr.evidence.robustness.nets import Params

__all__ = ["BatchedAdam", "FlatLayout"]


class BatchedAdam:
    """``torch.optim.Adam`` (defaults, no weight decay) over one flat ``[R, P]`` buffer
    that holds every weight of every run, with one learning rate per run.

    The same operations as torch's single-tensor Adam, but a handful of kernels per step
    whatever the number of weight tensors: with small models, per-kernel overhead, not
    arithmetic, is what costs.
    """

    def __init__(self, flat: Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.flat = flat
        self.b1, self.b2 = betas
        self.eps = eps
        self.m = torch.zeros_like(flat)
        self.v = torch.zeros_like(flat)
        self.t = 0

    @torch.no_grad()
    def step(self, lr: Tensor) -> None:
        """One Adam step with ``lr`` (``[R]``); consumes ``flat.grad``."""
        self.t += 1
        bc1 = 1.0 - self.b1**self.t
        bc2_sqrt = math.sqrt(1.0 - self.b2**self.t)
        g = self.flat.grad
        assert g is not None, "step() after backward()"
        self.m.lerp_(g, 1.0 - self.b1)
        self.v.mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
        denom = (self.v.sqrt() / bc2_sqrt).add_(self.eps)
        step_size = (lr / bc1).to(self.flat.dtype).unsqueeze(1)
        self.flat.sub_(step_size * self.m / denom)
        self.flat.grad = None


class FlatLayout:
    """Where each named weight lives in a flat ``[R, P]`` buffer."""

    def __init__(self, params: Params) -> None:
        self.entries: list[tuple[str, tuple[int, ...], int, int]] = []
        offset = 0
        for name, value in params.items():
            shape = tuple(value.shape[1:])
            size = math.prod(shape)
            self.entries.append((name, shape, offset, size))
            offset += size
        self.size = offset

    def pack(self, params: Params) -> Tensor:
        runs = next(iter(params.values())).shape[0]
        return torch.cat([params[n].reshape(runs, -1) for n, *_ in self.entries], dim=1)

    def views(self, flat: Tensor) -> Params:
        """Named views into ``flat``; gradients flow back into ``flat.grad``."""
        runs = flat.shape[0]
        return {n: flat[:, o:o + k].view(runs, *shape) for n, shape, o, k in self.entries}

