"""Nowcasting two stock indices' monthly returns from their members' returns: a set model
with attention pooling (in the spirit of the Set Transformer, Lee et al. 2019): each
stock present that month is a token (a learned embedding of which stock it is plus a
linear map of its return), two pre-norm self-attention blocks mix the tokens, and pooling
by multihead attention with two learned seed queries (one per index) reads each index's
return off the set; Adam.

The data is matplotlib's sample stock prices (``Stocks.csv``: monthly closing prices of 8
stocks and 2 indices, 1990-01 to 2022-06): the same month's log returns of the stocks
present -> those of the S&P 500 and the Nasdaq Composite; split in time, the last 20% of
the months held out (:func:`~greedylr.evidence.workloads.data.stock_index_returns`). The
held-out metric is the RMSE of the standardized index returns, over both indices (lower
is better). The seventh probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import INDICES, STOCKS, stock_index_returns
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _Block(nn.Module):
    """A pre-norm transformer block over the tokens, absent ones masked out as keys."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, h: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
        z = self.norm1(h)
        h = h + self.attn(z, z, z, key_padding_mask=absent, need_weights=False)[0]
        return h + self.mlp(self.norm2(h))


class _SetAttention(nn.Module):
    """Stock tokens -> self-attention -> pooling by attention with one learned seed
    query per index -> each pooled vector's own linear readout."""

    def __init__(self, stocks: int = len(STOCKS), outputs: int = len(INDICES), d: int = 32,
                 heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.identity = nn.Parameter(torch.randn(stocks, d) * 0.1)
        self.value = nn.Linear(1, d)
        self.blocks = nn.ModuleList(_Block(d, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.seeds = nn.Parameter(torch.randn(outputs, d) * 0.1)
        self.pool = nn.MultiheadAttention(d, heads, batch_first=True)
        self.readout = nn.Parameter(torch.randn(outputs, d) * d ** -0.5)
        self.bias = nn.Parameter(torch.zeros(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        absent = x[..., 1] < 0.5  # [B, S]
        h = self.identity + self.value(x[..., :1])  # [B, S, d]
        for block in self.blocks:
            h = block(h, absent)
        z = self.norm(h)
        seeds = self.seeds.expand(x.shape[0], -1, -1)  # [B, outputs, d]
        pooled = self.pool(seeds, z, z, key_padding_mask=absent, need_weights=False)[0]
        return (pooled * self.readout).sum(-1) + self.bias  # [B, outputs]


def train(trial) -> None:
    fit_mse(trial, _SetAttention(), stock_index_returns(), 32, rmse_metrics)


register(
    Workload(
        name="stocks_set_attention",
        train=train,
        task="regression",
        family="set_attention",
        data="matplotlib sample stock prices Stocks.csv, a month's log returns of 8 stocks "
             "-> the S&P 500's and the Nasdaq's (311 train / 78 held out months, split in "
             "time)",
        lr=1e-3,
        steps=400,
        optimizer="adam",
        eval_every=40,
        metric="rmse",
        higher_is_better=False,
        quick_steps=200,
    )
)
