"""Which character is byte ``0xE4`` in ``cp1251``, given the rest of the table and the
other code pages? Neural matrix factorization (NeuMF, He et al. 2017): a codec and a
byte each have two embeddings, one pair multiplied element-wise (generalized matrix
factorization), the other concatenated through an MLP; the two towers' outputs together
give logits over the characters; Adagrad.

The data is the decoding tables of the 70 single-byte codecs that Python ships (the
``encodings`` package: ISO 8859, Windows, DOS, Mac, KOI8 and EBCDIC code pages), their
upper halves, 25% of the defined cells held out
(:func:`~greedylr.evidence.workloads.data.codec_tables`; 6,472 train / 2,113 held out): a
held-out cell is predicted from the same byte in codecs that agree with its codec
elsewhere (cp1252 and ISO 8859-1, the KOI8 or the DOS code pages share most of their
cells). A small data set: the model fits its training cells within the budget. The
held-out metric is the negative log-likelihood (nats per cell, lower is better), with
the accuracy reported too; on the scored half, predicting each byte's distribution of
characters over the training codecs scores NLL 3.50 and accuracy 0.23, and copying the
byte's character from the training codec that agrees most with the cell's codec on
their shared training bytes scores accuracy 0.76 (better than this model's). The ninth
probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import codec_tables
from greedylr.evidence.workloads.loop import fit_classifier, nll_metrics

__all__ = ["train"]


class _NeuMF(nn.Module):
    """GMF (``p_codec * q_byte``, ``dim`` wide) and an MLP over ``[p'_codec, q'_byte]``
    (``2 dim -> hidden -> dim``, ReLU), concatenated -> a linear layer to the classes."""

    def __init__(self, codecs: int, classes: int, bytes_: int = 128, dim: int = 32,
                 hidden: int = 128) -> None:
        super().__init__()
        self.gmf_codec = nn.Embedding(codecs, dim)
        self.gmf_byte = nn.Embedding(bytes_, dim)
        self.mlp_codec = nn.Embedding(codecs, dim)
        self.mlp_byte = nn.Embedding(bytes_, dim)
        for table in (self.gmf_codec, self.gmf_byte, self.mlp_codec, self.mlp_byte):
            nn.init.normal_(table.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, dim), nn.ReLU())
        self.head = nn.Linear(2 * dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codec, byte = x[:, 0], x[:, 1]
        gmf = self.gmf_codec(codec) * self.gmf_byte(byte)
        mlp = self.mlp(torch.cat([self.mlp_codec(codec), self.mlp_byte(byte)], dim=-1))
        return self.head(torch.cat([gmf, mlp], dim=-1))


def train(trial) -> None:
    data, codecs, classes = codec_tables()
    fit_classifier(trial, _NeuMF(codecs, classes), data, 64, nll_metrics)


register(
    Workload(
        name="codec_table_neumf",
        train=train,
        task="classification",
        family="neural_matrix_factorization",
        data="the decoding tables of Python's 70 single-byte codecs (shipped by Python), "
             "(codec, upper byte) -> its character (6,472 train / 2,113 held out cells)",
        lr=0.1,
        steps=1000,
        optimizer="adagrad",
        eval_every=100,
        metric="nll",
        higher_is_better=False,
        quick_steps=500,
    )
)
