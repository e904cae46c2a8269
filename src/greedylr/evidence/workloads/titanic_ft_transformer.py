"""Who survived the Titanic: an FT-Transformer (Gorishniy et al. 2021) turns each of a
passenger's features into a token (numeric features by a learned per-feature scale and
bias, categorical ones by an embedding), reads them with a transformer encoder and
classifies the passenger from a [CLS] token, Adamax.

The data is the Titanic's 1,309 passengers (OpenML's dataset 40945, which scikit-learn
ships whole among its test fixtures), 25% of the passengers held out
(:func:`~greedylr.evidence.workloads.data.titanic`). The held-out metric is the negative
log-likelihood (cross-entropy, nats per passenger; lower is better; the training
passengers' survival rate scores 0.660), with the accuracy reported too. Round 16's
probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import TITANIC_CATEGORIES, TITANIC_NUMERIC, titanic
from greedylr.evidence.workloads.loop import fit_classifier, nll_metrics

__all__ = ["train"]


class _FTTransformer(nn.Module):
    """Feature tokenizer + transformer: ``x`` is the numeric features, then the
    categorical ones' ids (as floats); one token per feature and a [CLS] token, whose
    final state is classified."""

    offsets: torch.Tensor

    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.numeric = len(TITANIC_NUMERIC)
        sizes = [len(values) + 1 for values in TITANIC_CATEGORIES.values()]  # + "other"
        self.register_buffer("offsets", torch.tensor([0, *sizes[:-1]]).cumsum(0),
                             persistent=False)
        self.scale = nn.Parameter(torch.randn(self.numeric, dim) * dim**-0.5)
        self.bias = nn.Parameter(torch.zeros(self.numeric, dim))
        self.embed = nn.Embedding(sum(sizes), dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.ReLU(), nn.Linear(dim, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric = x[:, :self.numeric, None] * self.scale + self.bias
        categorical = self.embed(x[:, self.numeric:].long() + self.offsets)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), numeric, categorical], 1)
        return self.head(self.encoder(tokens)[:, 0])


def train(trial) -> None:
    data = titanic()
    fit_classifier(trial, _FTTransformer(), data, 64, nll_metrics)


register(
    Workload(
        name="titanic_ft_transformer",
        train=train,
        task="classification",
        family="ft_transformer",
        data="the Titanic's passengers (shipped by scikit-learn), 5 numeric and 5 "
             "categorical features -> survived (982 train / 327 held out passengers)",
        lr=2e-3,
        steps=400,
        optimizer="adamax",
        eval_every=40,
        metric="nll",
        higher_is_better=False,
        quick_steps=200,
    )
)
