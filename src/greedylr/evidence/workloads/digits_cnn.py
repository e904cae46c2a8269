"""A small CNN on sklearn's 8x8 digits (conv16-conv32-pool-fc64), SGD with momentum."""

from __future__ import annotations

from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import digits
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train(trial) -> None:
    data = digits()
    fit_classifier(trial, _model(), data, 64)


register(
    Workload(
        name="digits_cnn",
        train=train,
        task="classification",
        family="cnn",
        data="sklearn digits (8x8, 1,437 train / 360 held out)",
        lr=0.02,
        steps=400,
        optimizer="sgd",
        eval_every=100,
        quick_steps=200,
        lrs=(("adamw", 1e-3),),
    )
)
