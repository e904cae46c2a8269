"""Forecasting a stock's trading volume one day ahead: N-BEATS (Oreshkin et al. 2020), a
stack of fully connected blocks, each of which explains part of its input (a backcast,
subtracted before the next block) and adds its part of the forecast, RAdam. The blocks see
the volume relative to the window's mean and forecast the departure from it.

The data is matplotlib's sample stock prices (``goog.npz``: Google's daily prices and
volume, 1,047 trading days), the log of the volume traded; the last 10 days -> the next
day's; split in time, the last 20% of the days held out
(:func:`~greedylr.evidence.workloads.data.stock_volume_windows`). The held-out metric is
the RMSE of the standardized log volume (lower is better). Round 16's probe split.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import stock_volume_windows
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _Block(nn.Module):
    """An MLP of the (residual) input -> its backcast and its forecast (the generic,
    fully learned basis)."""

    def __init__(self, size: int, hidden: int, layers: int = 4) -> None:
        super().__init__()
        widths = [size] + [hidden] * layers
        self.mlp = nn.Sequential(*(m for a, b in itertools.pairwise(widths)
                                   for m in (nn.Linear(a, b), nn.ReLU())))
        self.backcast = nn.Linear(hidden, size)
        self.forecast = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.mlp(x)
        return self.backcast(h), self.forecast(h)


class _NBeats(nn.Module):
    def __init__(self, window: int = 10, blocks: int = 3, hidden: int = 64) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Block(window, hidden) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the window's mean log volume is its level: the blocks see the volume relative to
        # it and forecast the departure from it (the instance normalization of RevIN)
        level = x.mean(1, keepdim=True)
        residual = x - level
        forecast = level
        for block in self.blocks:
            backcast, part = block(residual)
            residual = residual - backcast
            forecast = forecast + part
        return forecast


def train(trial) -> None:
    fit_mse(trial, _NBeats(), stock_volume_windows(), 32, rmse_metrics)


register(
    Workload(
        name="stock_volume_nbeats",
        train=train,
        task="regression",
        family="nbeats",
        data="matplotlib sample stock prices goog.npz, 10 days of log volume traded -> the "
             "next day's (827 train / 200 held out, split in time)",
        lr=1e-3,
        steps=500,
        optimizer="radam",
        eval_every=50,
        metric="rmse",
        higher_is_better=False,
        quick_steps=250,
    )
)
