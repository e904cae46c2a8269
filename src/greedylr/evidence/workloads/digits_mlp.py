"""An MLP on sklearn's 8x8 digits: the smallest image classifier (10 classes)."""

from __future__ import annotations

from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import digits
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


def train(trial) -> None:
    data = digits()
    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    fit_classifier(trial, model, data, 64)


register(
    Workload(
        name="digits_mlp",
        train=train,
        task="classification",
        family="mlp",
        data="sklearn digits (8x8, 1,437 train / 360 held out)",
        lr=1e-3,
        steps=500,
        optimizer="adamw",
        eval_every=100,
        quick_steps=300,
        # per-optimizer defaults, for the optimizer sweep on this workload
        lrs=(("sgd", 0.05), ("adagrad", 0.02), ("adafactor", 1e-3)),
    )
)
