"""What colour is "dusty teal"? A fastText-style model (Joulin et al. 2017, with the
subwords of Bojanowski et al. 2017) averages the embeddings of a colour name's words and
their character 2- to 4-grams and maps the average, through a small MLP and a sigmoid, to
the colour's RGB; RMSprop.

The data is the xkcd colour survey's 949 named colours (Munroe 2010, CC0; as matplotlib
ships them, ``matplotlib.colors.XKCD_COLORS``), 25% of the names held out
(:func:`~greedylr.evidence.workloads.data.xkcd_colors`): a held-out name is read only
through the subwords it shares with training names. The held-out metric is the RMSE of
the RGB channels in [0, 1] (lower is better; predicting the training names' mean colour
scores 0.32 on the scored half). The eighth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import xkcd_colors
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _FastText(nn.Module):
    """The mean of a name's subword embeddings (padding id 0 left out of the mean) ->
    ``dim -> hidden -> 3`` with a GELU -> sigmoid: RGB in (0, 1)."""

    def __init__(self, ids: int, dim: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(ids, dim, mode="mean", padding_idx=0)
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.bag(x)))


def train(trial) -> None:
    data, ids = xkcd_colors()
    fit_mse(trial, _FastText(ids), data, 32, rmse_metrics)


register(
    Workload(
        name="xkcd_color_fasttext",
        train=train,
        task="regression",
        family="fasttext",
        data="the xkcd colour survey's named colours (shipped by matplotlib), a name's "
             "words and character n-grams -> its RGB (712 train / 237 held out names)",
        lr=0.0316,
        steps=1000,
        optimizer="rmsprop",
        eval_every=100,
        metric="rmse",
        higher_is_better=False,
        quick_steps=500,
    )
)
