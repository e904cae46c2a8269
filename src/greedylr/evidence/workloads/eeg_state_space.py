"""Forecasting a 4-channel EEG recording one sample ahead: a stack of gated diagonal linear
state-space layers (a linear recurrence with learned per-unit decays, computed as its
causal convolution, in the manner of S4D and the LRU, each layer's output gated as in
Mamba and HGRN), SGD with Nesterov momentum.

The data is matplotlib's sample EEG (``eeg.dat``: 4 channels, 800 samples), the last 32
samples of all four channels -> their next sample; split in time, the last 20% held out
(:func:`~greedylr.evidence.workloads.data.eeg_windows`). The held-out metric is the RMSE of
the standardized forecast (lower is better). Round 15's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import eeg_windows
from greedylr.evidence.workloads.loop import fit_mse, rmse_metrics

__all__ = ["train"]


class _GatedLinearRecurrence(nn.Module):
    """``h_t = a * h_(t-1) + (1 - a) * u_t`` per state unit, ``a = sigmoid(decay)`` in
    (0, 1), ``u = W x``; computed for every ``t`` at once as the causal convolution of
    ``u`` with the kernel ``(1 - a) a^k``. The output, ``h`` gated by ``sigmoid(G x)``,
    is projected back and added to the (pre-normed) input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.inp = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        # decays from fast (a ~ 0.5) to slow (a ~ 0.97), spread over the units
        self.decay = nn.Parameter(torch.linspace(0.0, 3.5, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(x)
        u = self.inp(z)  # (batch, time, dim)
        a = torch.sigmoid(self.decay)
        t = torch.arange(x.shape[1], device=x.device)
        lag = t[:, None] - t[None, :]  # (time, time): how long ago
        causal = (lag >= 0).to(x.dtype)
        kernel = (1 - a) * a ** lag.clamp(min=0)[..., None] * causal[..., None]  # (t, s, dim)
        h = torch.einsum("tsd,bsd->btd", kernel, u)
        return x + self.out(h * torch.sigmoid(self.gate(z)))


class _Forecaster(nn.Module):
    def __init__(self, channels: int = 4, dim: int = 32, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(channels, dim)
        self.layers = nn.Sequential(*(_GatedLinearRecurrence(dim) for _ in range(depth)))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.embed(x))[:, -1])


def train(trial) -> None:
    data = eeg_windows()
    fit_mse(trial, _Forecaster(), data, 32, rmse_metrics,
            optimizer_kwargs={"nesterov": True})


register(
    Workload(
        name="eeg_state_space",
        train=train,
        task="regression",
        family="state_space",
        data="matplotlib sample recording eeg.dat, 32 samples of 4 channels -> their next "
             "sample (608 train / 128 held out, split in time)",
        lr=0.316,
        steps=300,
        optimizer="sgd",
        eval_every=30,
        metric="rmse",
        higher_is_better=False,
        quick_steps=150,
    )
)
