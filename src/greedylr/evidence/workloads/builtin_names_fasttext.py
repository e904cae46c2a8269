"""Which language is ``NSLayoutManager``, ``array_map`` or ``ATSadd`` a built-in of?
fastText (Joulin et al. 2017) as published: the mean of an identifier's character
2- to 4-gram embeddings (Bojanowski et al. 2017), a linear softmax; NAdam.

The data is pygments' lists of 11 languages' built-in names (Asymptote, Cocoa, Csound,
Lasso, LilyPond, MQL, PHP, Scilab, SourceMod, Stata, Vim; as pygments, a dependency of
rich, ships them), 1,000 identifiers a language that no other of the 11 lists has, 25%
held out (:func:`~greedylr.evidence.workloads.data.builtin_identifiers`): a held-out
name is read only through the character n-grams it shares with training names. The
held-out metric is the negative log-likelihood (cross-entropy, nats per name; lower is
better; chance scores log 11 = 2.40), with the accuracy reported too. The eighth probe
split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import IDENTIFIER_LANGUAGES, builtin_identifiers
from greedylr.evidence.workloads.loop import fit_classifier, nll_metrics

__all__ = ["train"]


class _FastText(nn.Module):
    """The mean of a name's subword embeddings (padding id 0 left out of the mean) -> a
    linear layer to the languages' logits."""

    def __init__(self, ids: int, dim: int = 32,
                 classes: int = len(IDENTIFIER_LANGUAGES)) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(ids, dim, mode="mean", padding_idx=0)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(x))


def train(trial) -> None:
    data, ids = builtin_identifiers()
    fit_classifier(trial, _FastText(ids), data, 64, nll_metrics)


register(
    Workload(
        name="builtin_names_fasttext",
        train=train,
        task="classification",
        family="fasttext",
        data="pygments' lists of 11 languages' built-in names (shipped by pygments), an "
             "identifier's character n-grams -> its language (8,250 train / 2,750 held "
             "out identifiers)",
        lr=0.01,
        steps=800,
        optimizer="nadam",
        eval_every=80,
        metric="nll",
        higher_is_better=False,
        quick_steps=400,
    )
)
