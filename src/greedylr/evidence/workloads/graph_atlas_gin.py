"""Counting spanning trees: a graph isomorphism network (GIN, Xu et al. 2019) reads a
small graph and predicts the logarithm of its number of spanning trees, NAdam.

The data is networkx's atlas of every graph with up to 7 nodes (1,252, one per
isomorphism class), 25% of the graphs held out
(:func:`~greedylr.evidence.workloads.data.graph_atlas`), so every held-out graph is
one the network never saw under any numbering of its nodes. The target is exact
(Kirchhoff's theorem); the held-out metric is the RMSE of the standardized
``log(1 + spanning trees)`` (lower is better). Round 15's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import ATLAS_NODES, graph_atlas
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _GIN(nn.Module):
    """Nodes start from an embedding of their degree; each layer sums the neighbours'
    states into the node's own, ``h <- MLP((1 + eps) h + A h)``; every layer's states,
    summed over the graph's nodes, are read out together (the GIN readout)."""

    def __init__(self, dim: int = 64, depth: int = 4) -> None:
        super().__init__()
        self.degree = nn.Embedding(ATLAS_NODES, dim)
        self.eps = nn.Parameter(torch.zeros(depth))
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
            for _ in range(depth)
        )
        self.head = nn.Sequential(nn.Linear(dim * (depth + 1), dim), nn.ReLU(),
                                  nn.Linear(dim, 1))

    def forward(self, graphs: torch.Tensor) -> torch.Tensor:
        node = torch.diagonal(graphs, dim1=1, dim2=2)  # 1: a node, 0: padding
        adjacency = graphs - torch.diag_embed(node)
        h = self.degree(adjacency.sum(-1).long()) * node[..., None]
        readouts = [h.sum(1)]
        for eps, mlp in zip(self.eps, self.mlps, strict=True):
            h = mlp((1 + eps) * h + adjacency @ h) * node[..., None]
            readouts.append(h.sum(1))
        return self.head(torch.cat(readouts, -1)).squeeze(-1)


def train(trial) -> None:
    fit_mse(trial, _GIN(), graph_atlas(), 64, rmse_metrics)


register(
    Workload(
        name="graph_atlas_gin",
        train=train,
        task="regression",
        family="gnn",
        data="networkx's atlas of all graphs with up to 7 nodes -> log number of spanning "
             "trees (939 train / 313 held out graphs, each isomorphism class once)",
        lr=0.02,
        steps=300,
        optimizer="nadam",
        eval_every=30,
        metric="rmse",
        higher_is_better=False,
        quick_steps=150,
    )
)
