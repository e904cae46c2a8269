"""Language modelling with RWKV (Peng et al. 2023, its fourth version: a recurrent
network trained like a transformer) on the function schemas of PyTorch's operators:
two blocks of 48 channels, each a time mixing (token shift; each channel an average of
the past values weighted by the keys and a learned exponential decay, with a bonus for
the current token, gated by a receptance) and a channel mixing (squared ReLU, 96 wide);
computed here in its parallel form, a causal softmax over the window per channel, as
one batched product; Adam.

The data is the ``func:`` lines of ATen's ``native_functions.yaml``, which the torch
wheel ships with torchgen (``add.out(Tensor self, Tensor other, *, Scalar alpha=1,
Tensor(a!) out) -> Tensor(a!)``, ...), one per line in the file's order, whole operators
held out: every overload and in-place variant of one on the same side
(:func:`~greedylr.evidence.workloads.data.aten_schemas`; 192,370 train / 46,125 held-out
characters). The held-out metric is the per-character perplexity; on the scored half,
the training schemas' character frequencies score 28.5, a character bigram model
(add-one) 7.2 and a trigram one (backed off to the bigram) 3.0, this model 1.97. The
twelfth probe split."""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, aten_schemas
from greedylr.evidence.workloads.stdlib_char_transformer import fit_char_lm

__all__ = ["train"]

SEQ = 64
BATCH = 16


def _shift(x: torch.Tensor) -> torch.Tensor:
    """The previous position's input (zeros at the first): RWKV's token shift."""
    return nn.functional.pad(x, (0, 0, 1, -1))


class _TimeMix(nn.Module):
    """``wkv_t = sum_i softmax_i(k_i - (t - 1 - i) w) v_i`` over ``i < t``, with
    ``k_t + u`` for ``i = t``, per channel; output ``W_o (sigmoid(r_t) * wkv_t)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.decay = nn.Parameter(torch.linspace(-4.0, 1.0, dim))  # w = exp(decay)
        self.bonus = nn.Parameter(torch.full((dim,), 0.5))  # u
        self.mix = nn.Parameter(torch.full((3, dim), 0.5))  # k, v, r token-shift mixes
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.receptance = nn.Linear(dim, dim, bias=False)
        self.output = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        prev = _shift(x)
        xk, xv, xr = (x * m + prev * (1 - m) for m in self.mix)
        k, v, r = self.key(xk), self.value(xv), torch.sigmoid(self.receptance(xr))
        t = torch.arange(x.shape[1], device=x.device)
        lag = (t[:, None] - t[None, :] - 1).to(x.dtype)  # [T, T]: t - 1 - i
        weight = -lag * torch.exp(self.decay)[:, None, None]  # [C, T, T], <= 0 for i < t
        weight = torch.where(lag == -1, self.bonus[:, None, None], weight)
        decays = torch.exp(weight.masked_fill(lag < -1, float("-inf")))
        # the softmax over i of weight + k, as one batched product per channel: exp(k)
        # taken relative to the window's largest key (per channel) cancels in the ratio
        keys = torch.exp(k - k.detach().amax(dim=1, keepdim=True))  # [B, T, C], <= 1
        both = torch.cat([keys * v, keys]).permute(2, 1, 0)  # [C, T, 2B]
        num, den = torch.bmm(decays, both).permute(2, 1, 0).chunk(2)  # [B, T, C] each
        return self.output(r * num / (den + 1e-30))


class _ChannelMix(nn.Module):
    """``sigmoid(W_r x_r) * W_v relu(W_k x_k)^2``, both inputs token-shifted mixes."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.mix = nn.Parameter(torch.full((2, dim), 0.5))
        self.key = nn.Linear(dim, hidden, bias=False)
        self.value = nn.Linear(hidden, dim, bias=False)
        self.receptance = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = _shift(x)
        xk, xr = (x * m + prev * (1 - m) for m in self.mix)
        return torch.sigmoid(self.receptance(xr)) * self.value(torch.relu(self.key(xk)) ** 2)


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.time = _TimeMix(dim)
        self.channel = _ChannelMix(dim, 2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.time(self.ln1(x))
        return x + self.channel(self.ln2(x))


class _RWKV(nn.Module):
    """Character embeddings -> layer norm -> two RWKV blocks -> layer norm -> logits."""

    def __init__(self, vocab: int, dim: int = 48, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.ln_in, self.ln_out = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*(_Block(dim) for _ in range(layers)))
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, vocab]
        return self.head(self.ln_out(self.blocks(self.ln_in(self.embed(x)))))


def train(trial) -> None:
    train_stream, test_stream = aten_schemas()
    fit_char_lm(trial, _RWKV(len(VOCAB)), train_stream, test_stream, SEQ, BATCH)


register(
    Workload(
        name="aten_schema_rwkv",
        train=train,
        task="language_modelling",
        family="rwkv",
        data="the function schemas of PyTorch's ATen operators (native_functions.yaml, "
             "shipped by torch's torchgen), characters, whole operators held out "
             "(192,370 train / 46,125 held-out characters)",
        lr=0.03,
        steps=400,
        optimizer="adam",
        eval_every=40,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=200,
    )
)
