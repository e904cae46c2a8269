"""An MLP autoencoder of sklearn's 8x8 digits (64 -> 32 -> 8 -> 32 -> 64), AdamW: an
unsupervised task on the digits the classifiers use.

The held-out metric is the reconstruction error of the held-out images (mean squared
error per pixel, pixels in [0, 1]; lower is better).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import digits
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["train"]


def _metrics(model: nn.Module, x: torch.Tensor, _: torch.Tensor) -> dict[str, float]:
    mse = F.mse_loss(model(x), x).item()
    return {"mse": mse, "loss": mse}


def train(trial) -> None:
    data = digits()
    model = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(),
        nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64),
    )
    run(
        trial,
        model,
        batch_sampler(data.x_train, data.x_train, 64),
        lambda m, b: F.mse_loss(m(b[0]), b[1]),
        split_evaluator(trial, _metrics, data.x_test, data.y_test),
    )


register(
    Workload(
        name="digits_autoencoder",
        train=train,
        task="regression",
        family="autoencoder",
        data="sklearn digits (8x8, 1,437 train / 360 held out), images as their own targets",
        lr=0.0316,
        steps=400,
        optimizer="adamw",
        eval_every=50,
        metric="mse",
        higher_is_better=False,
        quick_steps=200,
    )
)
