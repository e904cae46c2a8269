"""Language modelling of JavaScript with a gated convolutional network (Dauphin et al.
2017): causal 1-D convolutions whose outputs pass through gated linear units (GLU),
in residual blocks with growing dilation, no recurrence and no attention; Adamax.

The data is the JavaScript of the Monaco editor (Microsoft, MIT licence; the unminified
``editor.main.js`` of the web files that tensorboard ships), its AMD modules split one
in eight held out (:func:`~greedylr.evidence.workloads.data.monaco_source`; 2M training
characters, 200k held out). The held-out metric is the per-character perplexity on
modules the model never saw (lower is better; on the scored half, predicting each
character with its training frequency scores 27.9, with a bigram table of the training
text 10.9). With 600 steps of 12 windows of 64 characters (461k characters, under a
quarter of the training text) the model is still learning at the end.
The ninth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, monaco_source
from greedylr.evidence.workloads.stdlib_char_transformer import fit_char_lm

__all__ = ["train"]

SEQ = 64
BATCH = 12


class _GatedBlock(nn.Module):
    """``x + W(GLU(causal conv(x)))``: a kernel-``k`` convolution that sees only the
    past (left padding of ``(k - 1) * dilation``), its ``2 * dim`` outputs gated by
    the GLU, a 1x1 output projection."""

    def __init__(self, dim: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(dim, 2 * dim, kernel, dilation=dilation)
        self.out = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, dim, T]
        h = nn.functional.glu(self.conv(nn.functional.pad(x, (self.pad, 0))), dim=1)
        return x + self.out(h)


class _GatedCNN(nn.Module):
    """Character embeddings -> gated blocks (kernel 3, dilations 1, 2, 4, 8, 16: a
    receptive field of 63 characters) -> a linear head to the next character's logits."""

    def __init__(self, vocab: int, dim: int = 48, kernel: int = 3,
                 dilations: tuple[int, ...] = (1, 2, 4, 8, 16)) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.Sequential(*(_GatedBlock(dim, kernel, d) for d in dilations))
        self.head = nn.Linear(dim, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, vocab]
        h = self.blocks(self.embed(x).transpose(1, 2))
        return self.head(h.transpose(1, 2))


def train(trial) -> None:
    train_stream, test_stream = monaco_source()
    fit_char_lm(trial, _GatedCNN(len(VOCAB)), train_stream, test_stream, SEQ, BATCH)


register(
    Workload(
        name="monaco_js_gated_cnn",
        train=train,
        task="language_modelling",
        family="gated_cnn",
        data="the Monaco editor's JavaScript (shipped by tensorboard), characters, whole "
             "modules held out (2M train / 200k held-out characters)",
        lr=0.02,
        steps=600,
        optimizer="adamax",
        eval_every=60,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=300,
    )
)
