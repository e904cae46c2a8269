"""An MLP on sklearn's 8x8 digits: the smallest image classifier (10 classes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import ArrayDataset, digits
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["classification_evaluator", "classification_metrics", "train"]


def classification_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Held-out accuracy and cross-entropy of a classifier, in one forward pass."""
    logits = model(x)
    return {
        "accuracy": (logits.argmax(-1) == y).float().mean().item(),
        "loss": F.cross_entropy(logits, y).item(),
    }


def classification_evaluator(trial, data: ArrayDataset):
    """:func:`classification_metrics` on ``data``'s held-out part (split if the trial asks)."""
    return split_evaluator(trial, classification_metrics, data.x_test, data.y_test)


def train(trial) -> None:
    data = digits()
    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    run(
        trial,
        model,
        batch_sampler(data.x_train, data.y_train, 64),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        classification_evaluator(trial, data),
    )


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
