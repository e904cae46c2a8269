"""Denoising of an MRI slice: a residual convolutional denoiser (it predicts the noise),
Adafactor.

The data is matplotlib's sample MRI slice, 16x16 crops with Gaussian noise (standard
deviation 0.1 of the intensity range); whole 32x32 blocks of the slice are held out, and
the held-out metric is the PSNR of the denoised crops against the clean ones (dB; higher is
better). Round 12's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import mri_patches
from greedylr.evidence.workloads.loop import fit_mse, psnr_metrics

__all__ = ["train"]


class _Denoiser(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.noise = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.noise(x)


def train(trial) -> None:
    data = mri_patches()
    fit_mse(trial, _Denoiser(), data, 32, psnr_metrics)


register(
    Workload(
        name="mri_denoiser",
        train=train,
        task="regression",
        family="cnn",
        data="matplotlib sample MRI slice s1045.ima.gz, 16x16 noisy crops (7,514 train / 175 "
             "held out, from separate 32x32 blocks)",
        lr=0.00316,
        steps=300,
        optimizer="adafactor",
        eval_every=30,
        metric="psnr",
        higher_is_better=True,
        quick_steps=150,
    )
)
