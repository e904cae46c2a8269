"""Language modelling with a selective state-space model (Mamba's, in its second
version's form, Dao and Gu 2024: a recurrence ``h_t = exp(dt_t a) h_(t-1) + dt_t B_t
x_t``, ``y_t = C_t h_t + D x_t``, whose step ``dt``, input map ``B`` and output map ``C``
depend on the input, so that it chooses what to keep; ``a`` a learned negative scalar a
head) on IBM's decimal arithmetic test cases: two blocks of 48 channels, each a
projection to 96 (four heads of 24, a state of 8), a causal depthwise convolution of
width 4, the selective scan, gated by ``silu(z)`` and projected back; computed here in
its parallel form (the state-space duality: for every ``t`` and ``s <= t``, ``C_t . B_s``
times the decay ``exp(sum of dt a over s < r <= t)``, one batched product); AdamW.

The data is the General Decimal Arithmetic test cases (Mike Cowlishaw, IBM), which
CPython ships in its test suite (``test/decimaltestdata``): ``ddadd011 add
'0.4444444444444446' '0.5555555555555555' -> '1.000000000000000' Inexact Rounded`` and
the directives that set the context, comments dropped, whole operations held out: the
files of every format of one (``add``, ``ddAdd``, ``dqAdd``) on the same side
(:func:`~greedylr.evidence.workloads.data.decimal_tests`; 1,000,000 train / 200,000
held-out characters; a few training files apply held-out operations in passing: the
canonical-encoding ones compare, add's subtracts). The held-out metric is the
per-character perplexity; on the scored half, the training characters' frequencies
score 33.0, a character bigram model (add-one) 11.6 and a trigram one (backed off to
the bigram) 7.8, this model 5.18. It barely responds to a higher LR (5.20 at 3.16x).
The thirteenth probe split."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, decimal_tests
from greedylr.evidence.workloads.stdlib_char_transformer import fit_char_lm

__all__ = ["train"]

SEQ = 64
BATCH = 16


class _SelectiveSSM(nn.Module):
    """Mamba-2's mixer: ``in -> (x, z, B, C, dt)``; ``x`` through a causal depthwise
    convolution and SiLU; the selective scan per head; ``* silu(z)``; ``out``."""

    def __init__(self, dim: int, heads: int = 4, state: int = 8, expand: int = 2,
                 conv: int = 4) -> None:
        super().__init__()
        self.inner, self.heads, self.state = expand * dim, heads, state
        self.project = nn.Linear(dim, 2 * self.inner + 2 * state + heads)
        self.conv = nn.Conv1d(self.inner, self.inner, conv, groups=self.inner,
                              padding=conv - 1)
        self.a_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, heads)))  # a = -exp
        dt = torch.exp(torch.linspace(math.log(1e-3), math.log(1e-1), heads))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.skip = nn.Parameter(torch.ones(heads))  # D
        self.output = nn.Linear(self.inner, dim)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        n, t, _ = u.shape
        x, z, b, c, dt = self.project(u).split(
            [self.inner, self.inner, self.state, self.state, self.heads], dim=-1)
        x = F.silu(self.conv(x.transpose(1, 2))[..., :t].transpose(1, 2))
        x = x.reshape(n, t, self.heads, -1)  # [B, T, H, P]
        dt = F.softplus(dt + self.dt_bias)  # [B, T, H]
        log_decay = torch.cumsum(dt * -torch.exp(self.a_log), dim=1)  # [B, T, H]
        causal = torch.ones(t, t, dtype=torch.bool, device=u.device).tril()[..., None]
        gap = (log_decay[:, :, None] - log_decay[:, None]).masked_fill(~causal, -math.inf)
        weight = torch.einsum("btn,bsn->bts", c, b)[..., None] * torch.exp(gap)  # [B,T,S,H]
        y = torch.einsum("btsh,bshp->bthp", weight, x * dt[..., None])
        y = y + self.skip[:, None] * x
        return self.output(y.reshape(n, t, self.inner) * F.silu(z))


class _Mamba(nn.Module):
    """Character embeddings -> pre-norm residual selective-SSM blocks -> norm -> logits."""

    def __init__(self, vocab: int, dim: int = 48, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.mixers = nn.ModuleList(_SelectiveSSM(dim) for _ in range(layers))
        self.ln_out = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, vocab]
        h = self.embed(x)
        for norm, mixer in zip(self.norms, self.mixers, strict=True):
            h = h + mixer(norm(h))
        return self.head(self.ln_out(h))


def train(trial) -> None:
    train_stream, test_stream = decimal_tests()
    fit_char_lm(trial, _Mamba(len(VOCAB)), train_stream, test_stream, SEQ, BATCH)


register(
    Workload(
        name="decimal_test_mamba",
        train=train,
        task="language_modelling",
        family="selective_ssm",
        data="IBM's General Decimal Arithmetic test cases (shipped in CPython's test "
             "suite), characters, whole operations held out (1,000,000 train / 200,000 "
             "held-out characters)",
        lr=0.03,
        steps=400,
        optimizer="adamw",
        eval_every=40,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=200,
    )
)
