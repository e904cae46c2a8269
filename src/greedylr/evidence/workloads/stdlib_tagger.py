"""Sequence labelling: a bidirectional LSTM tags every character of Python source with
its token type (name, keyword, operator, number, string, comment, newline, space).

Labels come from the standard library's own ``tokenize`` run over its own source; the
held-out files are code the model never saw. Context matters: the same characters are a
name, a string or a comment depending on what surrounds them. Adafactor, as in the
paper's T5-style recipes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import TAGS, VOCAB, token_type_tagging
from greedylr.evidence.workloads.loop import run, split_evaluator

__all__ = ["Tagger", "train"]

SEQ = 64
BATCH = 16


class Tagger(nn.Module):
    """Character embedding, one BiLSTM layer, a linear tag head."""

    def __init__(self, vocab: int, tags: int, dim: int = 24, hidden: int = 48) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(x))[0])


def _windows(x: torch.Tensor, length: int) -> torch.Tensor:
    n = (len(x) // length) * length
    return x[:n].view(-1, length)


def train(trial) -> None:
    x_tr, y_tr, x_te, y_te = token_type_tagging()
    # held-out: non-overlapping windows of the held-out files, all of them
    xv, yv = _windows(x_te, 200), _windows(y_te, 200)
    starts_max = len(x_tr) - SEQ

    def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, starts_max, (BATCH,), generator=g)
        idx = starts[:, None] + torch.arange(SEQ)
        return x_tr[idx], y_tr[idx]

    def metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        logits = model(x)
        return {
            "token_accuracy": (logits.argmax(-1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits.reshape(-1, len(TAGS)), y.reshape(-1)).item(),
        }

    run(
        trial,
        Tagger(len(VOCAB), len(TAGS)),
        sample,
        lambda m, b: F.cross_entropy(m(b[0]).reshape(-1, len(TAGS)), b[1].reshape(-1)),
        split_evaluator(trial, metrics, xv, yv),
    )


register(
    Workload(
        name="stdlib_tagger",
        train=train,
        task="sequence_labelling",
        family="bilstm",
        data="CPython stdlib source, per-character token types from tokenize (400k/60k chars)",
        lr=3e-3,
        steps=300,
        optimizer="adafactor",
        eval_every=100,
        metric="token_accuracy",
        quick_steps=150,
        lrs=(("adamw", 3e-3),),
    )
)
