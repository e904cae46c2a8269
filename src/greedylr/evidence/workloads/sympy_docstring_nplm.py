"""Language modelling with Bengio et al.'s neural probabilistic language model (NPLM,
2003) on sympy's docstrings: the embeddings of the previous 12 characters, concatenated,
through a tanh hidden layer to the next character's logits, plus the paper's direct
connections from the embeddings to the logits; a fixed window, no recurrence, no
attention (written as two causal convolutions of width 12 over a window of text, which
is the same model at every position); SGD with Nesterov momentum.

The data is the docstrings of sympy's modules (:func:`~greedylr.evidence.workloads.data.
sympy_docstrings`; 1M train / 100k held-out characters, whole files held out): prose,
formulas and doctest sessions. The held-out metric is the per-character perplexity; the
training text's character frequencies score 28.2 on the held-out stream. The budget
reads the training text about once (600 windows of 32 x 64 characters): the model is
still learning at the end. The tenth probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, sympy_docstrings
from greedylr.evidence.workloads.stdlib_char_transformer import fit_char_lm

__all__ = ["train"]

SEQ = 64
BATCH = 32


class _NPLM(nn.Module):
    """``logits = U tanh(H e + d) + W e + b`` for ``e`` the concatenated embeddings of the
    last ``context`` characters (zero before the window's start)."""

    def __init__(self, vocab: int, dim: int = 32, context: int = 12, hidden: int = 256
                 ) -> None:
        super().__init__()
        self.pad = context - 1
        self.embed = nn.Embedding(vocab, dim)
        self.hidden = nn.Conv1d(dim, hidden, context)
        self.out = nn.Conv1d(hidden, vocab, 1)
        self.direct = nn.Conv1d(dim, vocab, context, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, vocab]
        e = nn.functional.pad(self.embed(x).transpose(1, 2), (self.pad, 0))
        logits = self.out(torch.tanh(self.hidden(e))) + self.direct(e)
        return logits.transpose(1, 2)


def train(trial) -> None:
    train_stream, test_stream = sympy_docstrings()
    fit_char_lm(trial, _NPLM(len(VOCAB)), train_stream, test_stream, SEQ, BATCH,
                optimizer_kwargs={"nesterov": True})


register(
    Workload(
        name="sympy_docstring_nplm",
        train=train,
        task="language_modelling",
        family="neural_probabilistic_lm",
        data="sympy's docstrings (shipped by sympy, a dependency of torch), characters, "
             "whole modules held out (1M train / 100k held-out characters)",
        lr=0.948,
        steps=600,
        optimizer="sgd",
        eval_every=60,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=300,
    )
)
