"""Which character set does a locale name the model never saw mean? An Elman network
(Elman 1990; a simple recurrent network, ``h_t = tanh(W x_t + U h_{t-1} + b)``, no gates)
reads the alias's characters; a linear layer maps the state after the last character to
logits over the code sets; plain SGD, without momentum.

The data is the locale aliases Python ships (``locale.locale_alias``, the table
``locale.normalize`` reads; from X.org's ``locale.alias``): each alias labelled with the
code set of the locale it normalizes to (46 classes: ``ISO8859-1``, ``UTF-8``,
``ISO8859-2``, ``eucJP``, ``KOI8-R``, ...), 25% held out
(:func:`~greedylr.evidence.workloads.data.locale_aliases`; 441 train / 146 held out):
the conventions carry over (``.utf8``, ``.euc``, ``.iso88591`` suffixes; a language's
legacy code set). A small set. The held-out metric is the negative log-likelihood (nats
per alias, lower is better), with the accuracy reported too; on the scored half,
predicting the training aliases' code-set frequencies scores NLL 2.21 (accuracy 0.36 for
the most frequent, ISO8859-1), and copying the code set of the training alias nearest in
spelling (most shared character trigrams) accuracy 0.70, better than this model's 0.58
(NLL 1.81). At 3.16x its LR the held-out loss rises from its third evaluation on: the
set is memorized. The eleventh probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, CharVocab, locale_aliases
from greedylr.evidence.workloads.loop import fit_classifier, nll_metrics

__all__ = ["train"]


class _AliasElman(nn.Module):
    """Character embeddings -> a one-layer Elman network (tanh) -> the state after the
    last character -> class logits."""

    def __init__(self, classes: int, dim: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), dim, padding_idx=CharVocab.PAD)
        self.rnn = nn.RNN(dim, hidden, nonlinearity="tanh", batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, classes]
        h, _ = self.rnn(self.embed(x))
        last = (x != CharVocab.PAD).sum(dim=1) - 1
        return self.head(h[torch.arange(len(x)), last])


def train(trial) -> None:
    data, classes = locale_aliases()
    fit_classifier(trial, _AliasElman(classes), data, 32, nll_metrics,
                   optimizer_kwargs={"momentum": 0.0})


register(
    Workload(
        name="locale_alias_elman",
        train=train,
        task="classification",
        family="elman_rnn",
        data="Python's locale aliases (locale.locale_alias), an alias -> the code set of "
             "its locale (441 train / 146 held-out aliases)",
        lr=0.1,
        steps=800,
        optimizer="sgd",
        eval_every=80,
        metric="nll",
        higher_is_better=False,
        quick_steps=400,
    )
)
