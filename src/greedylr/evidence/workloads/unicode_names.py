"""Two tasks on the Unicode character names that Python ships (``unicodedata``), split by
chunks of consecutive code points:

* ``unicode_gru_lm``: a character GRU language model of the names (one per line), AdamW;
  held-out metric: per-character perplexity;
* ``unicode_category_cnn``: a character CNN that reads a name and predicts the character's
  general category (12 categories, ``Lo`` the largest at 47%), Adagrad; held-out metric:
  accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, CharVocab, unicode_categories, unicode_names
from greedylr.evidence.workloads.loop import fit_classifier
from greedylr.evidence.workloads.stdlib_char_transformer import fit_char_lm

__all__ = ["CharCNN", "CharGRU", "train_category", "train_lm"]

SEQ = 48


class CharGRU(nn.Module):
    """Embedding, a 1-layer GRU, a linear head."""

    def __init__(self, vocab: int, dim: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(self.embed(x))[0])


class CharCNN(nn.Module):
    """Embedding, two 1-D convolutions, max-pooling over the name, a linear head."""

    def __init__(self, vocab: int, classes: int, dim: int = 32, channels: int = 96) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=CharVocab.PAD)
        self.convs = nn.Sequential(
            nn.Conv1d(dim, channels, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=2),
            nn.ReLU(),
        )
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(self.embed(x).transpose(1, 2))
        return self.head(h.amax(dim=2))


def train_lm(trial) -> None:
    train_ids, test_ids = unicode_names()
    fit_char_lm(trial, CharGRU(len(VOCAB)), train_ids, test_ids, SEQ, 32)


def train_category(trial) -> None:
    data = unicode_categories()
    fit_classifier(trial, CharCNN(len(VOCAB), int(data.y_train.max()) + 1), data, 64)


_DATA = "Unicode character names of Python's unicodedata, split by chunks of code points"
register(
    Workload(
        name="unicode_gru_lm",
        train=train_lm,
        task="language_modelling",
        family="gru",
        data=f"{_DATA} (689k train / 172k held-out chars)",
        lr=3e-2,
        steps=300,
        optimizer="adamw",
        eval_every=50,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=150,
    )
)
register(
    Workload(
        name="unicode_category_cnn",
        train=train_category,
        task="classification",
        family="char_cnn",
        data=f"{_DATA} -> general category (25,386 train / 6,396 held out)",
        lr=0.05,
        steps=300,
        optimizer="adagrad",
        eval_every=50,
        quick_steps=150,
    )
)
