"""How much does Times Italic kern "A" before "v"? A factorization machine (Rendle 2010)
over three fields, the font, the left glyph and the right glyph: a bias per id plus the
inner products of the three ids' factor vectors, every parameter an embedding row with a
sparse gradient; torch's SparseAdam (Adam's moments updated only for the rows a batch
touches, "lazy" Adam).

The data is Adobe's kerning pairs of the six PDF core fonts that kern with a table of
their own (Helvetica and Helvetica Bold, Times in four styles; the AFM files matplotlib
ships, 13,860 pairs over 176 glyphs), 25% of the pairs held out
(:func:`~greedylr.evidence.workloads.data.font_kerning`). A held-out pair is predicted
from the same pair in the other fonts and from its glyphs' other pairs (an accented
letter kerns as its base letter does). The held-out metric is the RMSE of the
standardized kern (lower is better; predicting the training mean scores 0.98 on the
scored half). The eighth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import font_kerning
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _FactorizationMachine(nn.Module):
    """``y = b + sum_i w_i + sum_{i<j} <v_i, v_j>`` over a row's ids ``i`` (one per field),
    the pairwise term computed as ``((sum_i v_i)^2 - sum_i v_i^2) / 2``. The global bias
    is a one-row table, so that every gradient is sparse (SparseAdam takes no other)."""

    def __init__(self, ids: int, factors: int = 64) -> None:
        super().__init__()
        self.bias = nn.Embedding(1, 1, sparse=True)
        self.linear = nn.Embedding(ids, 1, sparse=True)
        self.factors = nn.Embedding(ids, factors, sparse=True)
        nn.init.zeros_(self.bias.weight)
        nn.init.zeros_(self.linear.weight)
        nn.init.normal_(self.factors.weight, std=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.factors(x)  # [B, fields, factors]
        pairs = 0.5 * (v.sum(1).pow(2) - v.pow(2).sum(1)).sum(-1)
        bias = self.bias(torch.zeros_like(x[:, 0])).squeeze(-1)
        return bias + self.linear(x).sum((1, 2)) + pairs


def train(trial) -> None:
    data, ids = font_kerning()
    # no gradient clipping: clip_grad_norm_ takes no sparse gradients (nor does the
    # paper's FM need it)
    fit_mse(trial, _FactorizationMachine(ids), data, 32, rmse_metrics, clip_norm=None)


register(
    Workload(
        name="font_kerning_fm",
        train=train,
        task="regression",
        family="factorization_machine",
        data="Adobe's kerning pairs of 6 PDF core fonts (AFM files shipped by matplotlib), "
             "(font, left glyph, right glyph) -> kern (10,395 train / 3,465 held out pairs)",
        lr=0.01,
        steps=1000,
        optimizer="sparse_adam",
        eval_every=100,
        metric="rmse",
        higher_is_better=False,
        quick_steps=500,
    )
)
