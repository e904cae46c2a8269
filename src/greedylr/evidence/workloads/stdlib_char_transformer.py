"""Language modelling: a small GPT-style character transformer on the stdlib's source.

Pre-LN causal decoder (2 layers, width 64, 4 heads, context 64), AdamW with a short
warmup as in nanoGPT's recipe. Held-out metric: per-character perplexity on files the
model never saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, stdlib_text
from greedylr.evidence.workloads.loop import run, split_evaluator

__all__ = ["CharGPT", "fit_char_lm", "lm_evaluator", "lm_sampler", "train", "train_char_lm"]

SEQ = 64
BATCH = 16


class CharGPT(nn.Module):
    """Token and position embeddings, a causal pre-LN encoder stack, a tied head."""

    mask: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self, vocab: int, dim: int = 64, depth: int = 2, heads: int = 4, context: int = SEQ
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        # GPT-2's init: with the head tied, N(0, 1) embeddings start at a loss of ~25
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = nn.Parameter(torch.randn(1, context, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.register_buffer(
            "mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.tok(x) + self.pos[:, :t]
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        return self.norm(h) @ self.tok.weight.T


def lm_sampler(stream: torch.Tensor, seq: int, batch: int):
    """Random windows of ``stream``: (inputs, next-character targets)."""
    high = len(stream) - seq - 1

    def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, high, (batch,), generator=g)[:, None] + torch.arange(seq + 1)
        w = stream[idx]
        return w[:, :-1], w[:, 1:]

    return sample


def lm_evaluator(trial, stream: torch.Tensor, seq: int, windows: int = 256):
    """Held-out perplexity over ``windows`` fixed, evenly spaced windows of ``stream``
    (alternate windows feed the schedule when the trial asks: ``split_evaluator``)."""
    starts = torch.linspace(0, len(stream) - seq - 2, windows).long()
    idx = starts[:, None] + torch.arange(seq + 1)
    w = stream[idx]

    def metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        loss = F.cross_entropy(model(x).reshape(-1, len(VOCAB)), y.reshape(-1)).item()
        return {"perplexity": math.exp(min(loss, 50.0)), "loss": loss}

    return split_evaluator(trial, metrics, w[:, :-1], w[:, 1:])


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x).reshape(-1, len(VOCAB)), y.reshape(-1))


def fit_char_lm(trial, model: nn.Module, train_stream: torch.Tensor, test_stream: torch.Tensor,
                seq: int, batch: int, **options: Any) -> None:
    """:func:`run` for a character LM: ``batch`` random windows of ``seq`` characters of
    ``train_stream`` a step (:func:`lm_sampler`), next-character cross-entropy
    (:func:`lm_loss`), held-out perplexity on fixed windows of ``test_stream``
    (:func:`lm_evaluator`, split if the trial asks). ``options`` go to :func:`run`. Build
    ``model`` after loading the data, as every workload does, so that its initial
    weights are the ones its calibration saw."""
    run(trial, model, lm_sampler(train_stream, seq, batch), lm_loss,
        lm_evaluator(trial, test_stream, seq), **options)


def train_char_lm(trial, model_class: Callable[[int], nn.Module]) -> None:
    """Train ``model_class(vocabulary size)`` as a character LM on the stdlib's source,
    held-out perplexity on files it never sees; the model is built after the data, as
    each workload always did, so its initial weights do not change."""
    train_stream, test_stream = stdlib_text()
    fit_char_lm(trial, model_class(len(VOCAB)), train_stream, test_stream, SEQ, BATCH)


def train(trial) -> None:
    train_char_lm(trial, CharGPT)


register(
    Workload(
        name="stdlib_char_transformer",
        train=train,
        task="language_modelling",
        family="transformer_decoder",
        data="CPython stdlib source, characters (2M train / 200k held-out chars)",
        lr=2e-3,
        steps=200,
        optimizer="adamw",
        warmup=20,
        eval_every=50,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=100,
        lrs=(("adafactor", 2e-3),),
    )
)
