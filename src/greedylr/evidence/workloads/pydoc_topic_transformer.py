"""Text classification: a 2-layer transformer encoder reads 128 characters of Python's own
help texts (in 32 tokens of 4 characters) and names the topic they come from (26 topics),
AdamW.

The data is ``pydoc_data.topics`` (what ``help("for")`` prints), whole 512-character
segments of each topic held out (:func:`~greedylr.evidence.workloads.data.pydoc_topics`).
The held-out metric is accuracy (cross-entropy as the held-out loss). Round 13's probe
split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, pydoc_topics
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


class _TopicEncoder(nn.Module):
    """Characters embedded, every ``chunk`` of them merged into one token by a strided
    convolution (as a vision transformer's patches), then the encoder and a mean."""

    def __init__(self, classes: int, length: int, dim: int = 64, heads: int = 4,
                 layers: int = 2, chunk: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), dim)
        self.chunks = nn.Conv1d(dim, dim, chunk, stride=chunk)
        self.position = nn.Parameter(torch.zeros(length // chunk, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.chunks(self.embed(x).transpose(1, 2)).transpose(1, 2)
        h = self.encoder(tokens + self.position)
        return self.head(h.mean(dim=1))


def train(trial) -> None:
    data, names = pydoc_topics()
    fit_classifier(trial, _TopicEncoder(len(names), data.x_train.shape[1]), data, 64)


register(
    Workload(
        name="pydoc_topic_transformer",
        train=train,
        task="classification",
        family="transformer",
        data="Python's help texts (pydoc_data.topics), 128-character snippets -> one of 26 "
             "topics (15,652 train / 1,094 held out on Python 3.11, whole segments held out)",
        lr=3e-3,
        steps=300,
        optimizer="adamw",
        eval_every=30,
        quick_steps=150,
    )
)
