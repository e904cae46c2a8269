"""2x super-resolution of a terrain grid: a sub-pixel convolutional network (ESPCN, Shi et
al. 2016) predicts each 2x2 cell's four elevations from the pooled grid around it, SGD with
momentum.

The data is matplotlib's sample topography and bathymetry grid (``topobathy.npz``, 91 x
120), 12x12 crops and their 2x2 average pools; whole 16x16 blocks are held out
(:func:`~greedylr.evidence.workloads.data.topobathy_patches`). The held-out metric is the
RMSE of the standardized elevations (lower is better). Round 14's probe split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import topobathy_patches
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _SubPixel(nn.Module):
    """Features at the low resolution, ``scale * scale`` channels rearranged into a
    ``scale``-times finer grid (pixel shuffle), added to the nearest-neighbour upsampled
    input: the network predicts each cell's detail around its mean."""

    def __init__(self, width: int = 32, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.Tanh(),
            nn.Conv2d(width, width, 3, padding=1), nn.Tanh(),
            nn.Conv2d(width, width, 3, padding=1), nn.Tanh(),
            nn.Conv2d(width, scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return F.interpolate(low, scale_factor=self.scale, mode="nearest") + self.body(low)


def train(trial) -> None:
    fit_mse(trial, _SubPixel(), topobathy_patches(), 32, rmse_metrics)


register(
    Workload(
        name="topobathy_superres",
        train=train,
        task="regression",
        family="subpixel_cnn",
        data="matplotlib sample grid topobathy.npz, 2x2 pooled 6x6 -> 12x12 elevation crops "
             "(5,600 train incl. rotations and reflections / 175 held out, whole 16x16 "
             "blocks held out)",
        lr=1.0,
        steps=400,
        optimizer="sgd",
        eval_every=40,
        metric="rmse",
        higher_is_better=False,
        quick_steps=200,
    )
)
