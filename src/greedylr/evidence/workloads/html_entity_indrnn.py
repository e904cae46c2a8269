"""Where in Unicode is the character an HTML entity name stands for, for a name the
model never saw? An independently recurrent neural network (IndRNN, Li et al. 2018) reads
the name's characters: two layers, each ``h_t = relu(W x_t + u * h_{t-1} + b)`` with a
recurrent weight per unit instead of a matrix; a linear layer maps the state after the
last character to logits over the pages; Adadelta.

The data is HTML5's named character references as Python ships them
(``html.entities.html5``; the WHATWG's list): the 2,125 names ending in ``;``, each
labelled with the 256-code-point page of its character (18 pages: Latin-1, Greek,
Cyrillic, arrows, mathematical operators, the mathematical script, fraktur and
double-struck letters, ...), 25% of the names held out
(:func:`~greedylr.evidence.workloads.data.html_entities`; 1,594 train / 531 held out): the
naming conventions carry over (``&Afr;``, ``&Aopf;``, ``&Ascr;``; ``&Not...;`` and
``&...Equal;`` for operators). A small set: the model memorizes its training names
within the budget. The held-out metric is the negative log-likelihood (nats per name,
lower is better), with the accuracy reported too; on the scored half, predicting the
training names' page frequencies scores NLL 2.46 (accuracy 0.23 for the most frequent
page), and copying the page of the training name nearest in spelling (most shared
character trigrams) accuracy 0.68. The tenth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import html_entities
from greedylr.evidence.workloads.loop import fit_classifier, nll_metrics
from greedylr.evidence.workloads.minilm_spelling_qrnn import CharLayerStack

__all__ = ["train"]


class _IndRNNLayer(nn.Module):
    """``h_t = relu(W x_t + b + u * h_{t-1})``, ``u`` one weight per unit, drawn from
    U(0, 1) as the paper does; at padding the state carries over unchanged."""

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.input = nn.Linear(inputs, hidden)
        self.recurrent = nn.Parameter(torch.rand(hidden))

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        # x [B, T, inputs], real [B, T, 1] (False at padding) -> h [B, T, hidden]
        drive = self.input(x)
        h = torch.zeros_like(drive[:, 0])
        out = []
        for t in range(x.shape[1]):
            h = torch.where(real[:, t], torch.relu(drive[:, t] + self.recurrent * h), h)
            out.append(h)
        return torch.stack(out, dim=1)


def train(trial) -> None:
    data, classes = html_entities()
    fit_classifier(trial, CharLayerStack(_IndRNNLayer, classes), data, 32, nll_metrics)


register(
    Workload(
        name="html_entity_indrnn",
        train=train,
        task="classification",
        family="indrnn",
        data="HTML5's named character references (shipped by Python, html.entities), an "
             "entity's name -> its character's Unicode page (1,594 train / 531 held-out "
             "names)",
        lr=1.0,
        steps=800,
        optimizer="adadelta",
        eval_every=80,
        metric="nll",
        higher_is_better=False,
        quick_steps=400,
    )
)
