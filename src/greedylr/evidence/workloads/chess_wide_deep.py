"""Chess endgame outcome: a wide & deep network (Cheng et al. 2016) reads the 36 nominal
board features of a King+Rook vs King+Pawn position and says whether white can win,
Adagrad.

The wide part is a linear model of the features' values (one weight per value), the deep
part an MLP of their embeddings; the two logits add. The data is UCI's ``kr-vs-kp``
(3,196 positions, shipped by scikit-learn), 25% of the positions held out
(:func:`~greedylr.evidence.workloads.data.chess_endgames`). The held-out metric is
accuracy (cross-entropy as the held-out loss). Round 14's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import chess_endgames
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


class _WideDeep(nn.Module):
    def __init__(self, values: int, features: int, dim: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.wide = nn.Embedding(values, 2)
        self.bias = nn.Parameter(torch.zeros(2))
        self.embed = nn.Embedding(values, dim)
        self.deep = nn.Sequential(
            nn.Linear(features * dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = self.wide(x).sum(dim=1) + self.bias
        return wide + self.deep(self.embed(x).flatten(1))


def train(trial) -> None:
    data, values = chess_endgames()
    fit_classifier(trial, _WideDeep(values, data.x_train.shape[1]), data, 64)


register(
    Workload(
        name="chess_wide_deep",
        train=train,
        task="classification",
        family="wide_deep",
        data="UCI chess endgame kr-vs-kp (shipped by scikit-learn), 36 nominal board "
             "features -> white can win (2,397 train / 799 held out positions)",
        lr=0.01,
        steps=300,
        optimizer="adagrad",
        eval_every=30,
        quick_steps=150,
    )
)
