"""Colourization of a photograph's gray crops: a residual 4-layer CNN that predicts the
colour from the luminance, SGD with momentum.

The data is matplotlib's sample portrait of Grace Hopper, 2x2 pooled (300 x 256), cut into
16x16 crops; whole 32x32 blocks are held out (:func:`~greedylr.evidence.workloads.data.
hopper_colors`). The held-out metric is the PSNR of the RGB crop (higher is better).
Round 13's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import hopper_colors
from greedylr.evidence.workloads.loop import fit_mse, psnr_metrics

__all__ = ["train"]


class _Colorizer(nn.Module):
    """The gray value in every channel plus a learned correction."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        return gray.expand(-1, 3, -1, -1) + self.body(gray)


def train(trial) -> None:
    data = hopper_colors()
    fit_mse(trial, _Colorizer(), data, 64, psnr_metrics)


register(
    Workload(
        name="hopper_colorizer",
        train=train,
        task="regression",
        family="cnn",
        data="matplotlib sample photo grace_hopper.jpg, 2x2 pooled, gray -> RGB 16x16 crops "
             "(16,762 train / 350 held out, whole 32x32 blocks held out)",
        lr=1.0,
        steps=300,
        optimizer="sgd",
        eval_every=30,
        metric="psnr",
        higher_is_better=True,
        quick_steps=150,
    )
)
