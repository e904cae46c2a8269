"""Forecasting of a recorded membrane potential 8 samples ahead from the last 64: a dilated
1-D convolutional network, AdamW.

The data is matplotlib's sample recording ``membrane.dat`` (12,000 samples), split in time
(the last 20% held out); the held-out metric is the RMSE of the standardized forecast
(lower is better). Round 12's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import membrane_windows
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _Forecaster(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, width, 5, dilation=1), nn.ReLU(),
            nn.Conv1d(width, width, 5, dilation=2), nn.ReLU(),
            nn.Conv1d(width, width, 5, dilation=4), nn.ReLU(),
        )
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x[:, None])[:, :, -1])


def train(trial) -> None:
    data = membrane_windows()
    fit_mse(trial, _Forecaster(), data, 64, rmse_metrics)


register(
    Workload(
        name="membrane_forecast",
        train=train,
        task="regression",
        family="cnn",
        data="matplotlib sample recording membrane.dat, 64-sample windows -> the value 8 "
             "ahead (9,529 train / 2,329 held out, split in time)",
        lr=0.01,
        steps=300,
        optimizer="adamw",
        eval_every=30,
        metric="rmse",
        higher_is_better=False,
        quick_steps=150,
    )
)
