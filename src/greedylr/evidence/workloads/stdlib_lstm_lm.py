"""Language modelling: a 2-layer character LSTM on the stdlib's source, SGD with momentum
(the classic recipe for recurrent LMs, with gradient clipping at 1.0).

Held-out metric: per-character perplexity on files the model never saw.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.stdlib_char_transformer import train_char_lm

__all__ = ["CharLSTM", "train"]


class CharLSTM(nn.Module):
    """Embedding, a 2-layer LSTM, a linear head."""

    def __init__(self, vocab: int, dim: int = 32, hidden: int = 96) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(x))[0])


def train(trial) -> None:
    train_char_lm(trial, CharLSTM)


register(
    Workload(
        name="stdlib_lstm_lm",
        train=train,
        task="language_modelling",
        family="lstm",
        data="CPython stdlib source, characters (2M train / 200k held-out chars)",
        lr=1.0,
        steps=200,
        optimizer="sgd",
        eval_every=50,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=100,
        lrs=(("adamw", 3e-3), ("adagrad", 0.05)),
    )
)
