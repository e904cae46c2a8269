"""Predicting the missing links of a social network: a graph autoencoder (GAE, Kipf and
Welling 2016) encodes the characters of *Les Misérables* with a two-layer graph
convolutional network over the training graph and scores a pair of characters by the
inner product of their codes; SGD with momentum.

The data is the co-occurrence network of the novel's characters (Knuth's *Stanford
GraphBase*; ``networkx.les_miserables_graph``: 77 characters, 254 edges, which networkx
ships), 25% of the edges held out, each paired with a fixed non-edge
(:func:`~greedylr.evidence.workloads.data.lesmis_links`). The encoder sees only the
training edges; each step scores every training edge against as many fresh random
non-edges of the training graph. The held-out metric is the binary cross-entropy of the
held-out edges and their non-edges (lower is better); their AUC is reported too. The
seventh probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import lesmis_links
from greedylr.evidence.workloads.loop import fit_links

__all__ = ["train"]


class _GAE(nn.Module):
    """``Z = Â relu(Â X W1) W2`` with one-hot node features ``X = I`` (so ``Â X W1`` is
    ``Â W1``: a learned embedding per node, smoothed over its neighbours); a pair
    ``(u, v)`` scores the logit ``z_u . z_v``. No gradient clipping (as the paper)."""

    adjacency: torch.Tensor

    def __init__(self, adjacency: torch.Tensor, hidden: int = 32, code: int = 16) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.first = nn.Linear(adjacency.shape[0], hidden, bias=False)
        self.second = nn.Linear(hidden, code, bias=False)
        # node embeddings N(0, 2^2): the codes' inner products start of order one (with
        # Glorot's small ones SGD sits for hundreds of steps on the flat start)
        nn.init.normal_(self.first.weight, std=2.0)
        nn.init.xavier_uniform_(self.second.weight)

    def encode(self) -> torch.Tensor:
        h = torch.relu(self.first(self.adjacency))  # Â I W1
        return self.adjacency @ self.second(h)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        z = self.encode()
        return (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(-1)


def train(trial) -> None:
    data = lesmis_links()
    # no gradient clipping, as Kipf and Welling; clipped, SGD's best LR is past 1
    fit_links(trial, _GAE(data.adjacency), data, clip_norm=None)


register(
    Workload(
        name="lesmis_graph_autoencoder",
        train=train,
        task="link_prediction",
        family="graph_autoencoder",
        data="networkx's Les Misérables character co-occurrence network, link prediction "
             "(77 characters; 190 train / 64 held-out edges, each with a paired non-edge)",
        lr=0.0948,
        steps=1500,
        optimizer="sgd",
        eval_every=150,
        metric="bce",
        higher_is_better=False,
        quick_steps=750,
    )
)
