"""Regression of a photograph from its pixel coordinates: random Fourier features and an
MLP (an "implicit neural representation", Tancik et al. 2020).

The data is one of sklearn's two bundled photos, pooled 4x4 (106 x 160 pixels): ``china.jpg``
with AdamW (``photo_fourier_mlp``, round 7's fresh split) and ``flower.jpg`` with Adagrad
(``flower_fourier_mlp``, round 9's probe split). 20% of the pixels are held out, and the
held-out metric is their PSNR (dB; higher is better).
"""

from __future__ import annotations

from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import image_pixels
from greedylr.evidence.workloads.loop import fit_mse, psnr_metrics

__all__ = ["train", "train_flower"]


def train(trial) -> None:
    _train(trial, "china.jpg")


def train_flower(trial) -> None:
    _train(trial, "flower.jpg")


def _train(trial, image: str) -> None:
    data = image_pixels(image)
    model = nn.Sequential(
        nn.Linear(data.x_train.shape[1], 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, 3),
    )
    fit_mse(trial, model, data, 256, psnr_metrics)


register(
    Workload(
        name="photo_fourier_mlp",
        train=train,
        task="regression",
        family="fourier_mlp",
        data="sklearn sample photo china.jpg, 106x160 (13,568 pixels train / 3,392 held out)",
        lr=1e-2,
        steps=400,
        optimizer="adamw",
        eval_every=50,
        metric="psnr",
        higher_is_better=True,
        quick_steps=200,
    )
)

register(
    Workload(
        name="flower_fourier_mlp",
        train=train_flower,
        task="regression",
        family="fourier_mlp",
        data="sklearn sample photo flower.jpg, 106x160 (13,568 pixels train / 3,392 held out)",
        lr=0.0316,
        steps=400,
        optimizer="adagrad",
        eval_every=50,
        metric="psnr",
        higher_is_better=True,
        quick_steps=200,
    )
)
