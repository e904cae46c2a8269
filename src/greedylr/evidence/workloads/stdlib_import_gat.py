"""Which modules of the standard library import which? A graph attention network (GAT,
Veličković et al. 2018: each node's new features a softmax-weighted sum of its
neighbours', the weights from a learned score of the pair, several heads) encodes the
modules over the training graph; a pair scores the inner product of their codes; SGD
with momentum.

The data is the standard library's import graph
(:func:`~greedylr.evidence.workloads.data.stdlib_imports`: 658 modules, 2,684 links,
read with ``ast``; 25% of the links held out, each paired with a fixed non-link), each
module's features the tokens of its name (148: ``email``, ``mime``, ``codec``, ...).
Two attention layers (4 heads of 16, ELU; then one head of 32) over the training graph
with self-loops; each step scores every training link against as many fresh random
non-links. The held-out metric is the binary cross-entropy of the held-out links and
their non-links (lower is better); their AUC is reported too. On the scored half, the
common neighbours of a pair score an AUC of 0.81, Adamic-Adar 0.82, and a logistic
regression on Adamic-Adar, the log degrees and the shared name tokens a BCE of 0.38 and
an AUC of 0.92; this model 0.49 and 0.90 at its LR: behind that regression (attention
averages a node's neighbours, which hides its degree; the log degree as a feature did
not help, 0.51). The fourteenth probe split."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import stdlib_imports
from greedylr.evidence.workloads.loop import fit_links

__all__ = ["train"]


class _GraphAttention(nn.Module):
    """One GAT layer, ``heads`` heads of ``width``, over the links ``(source, target)``
    (both directions, and a self-loop a node): a softmax over each target's links."""

    def __init__(self, features: int, width: int, heads: int) -> None:
        super().__init__()
        self.heads, self.width = heads, width
        self.project = nn.Linear(features, heads * width, bias=False)
        self.source = nn.Parameter(torch.empty(heads, width))
        self.target = nn.Parameter(torch.empty(heads, width))
        nn.init.xavier_uniform_(self.source)
        nn.init.xavier_uniform_(self.target)

    def forward(self, x: torch.Tensor, links: torch.Tensor) -> torch.Tensor:
        source, target = links
        h = self.project(x).view(len(x), self.heads, self.width)  # [N, heads, width]
        scores = F.leaky_relu((h * self.source).sum(-1)[source]
                              + (h * self.target).sum(-1)[target], 0.2)  # [links, heads]
        top = torch.full((len(x), self.heads), float("-inf")).scatter_reduce(
            0, target[:, None].expand_as(scores), scores, "amax")
        weights = torch.exp(scores - top[target])
        total = torch.zeros(len(x), self.heads).index_add(0, target, weights)
        messages = h[source] * (weights / total[target])[..., None]
        return torch.zeros_like(h).index_add(0, target, messages).reshape(len(x), -1)


class _GATLinks(nn.Module):
    links: torch.Tensor
    features: torch.Tensor

    def __init__(self, adjacency: torch.Tensor, features: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("links", (adjacency > 0).nonzero().T, persistent=False)
        self.register_buffer("features", features, persistent=False)
        self.first = _GraphAttention(features.shape[1], 16, 4)
        self.second = _GraphAttention(64, 32, 1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        z = self.second(F.elu(self.first(self.features, self.links)), self.links)
        return (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(-1)


def train(trial) -> None:
    data, features, _ = stdlib_imports()
    fit_links(trial, _GATLinks(data.adjacency, features), data)


register(
    Workload(
        name="stdlib_import_gat",
        train=train,
        task="link_prediction",
        family="graph_attention_network",
        data="the CPython standard library's import graph, link prediction (658 modules; "
             "2,013 train / 671 held-out links, each with a paired non-link)",
        lr=1.0,
        steps=600,
        optimizer="sgd",
        eval_every=60,
        metric="bce",
        higher_is_better=False,
        quick_steps=300,
    )
)
