"""Language modelling with a temporal convolutional network (TCN, Bai et al. 2018) on
the short names of the emoji: three residual blocks of two dilated causal convolutions
each (dilations 1, 2, 4; kernel 3: 29 characters of context), ReLU, a 1x1 convolution to
the next character's logits; no recurrence, no attention; RMSprop.

The data is the emoji names rich prints for ``:name:`` (rich's ``_emoji_codes``, from
Unicode's CLDR short names: ``woman_mechanic_medium-dark_skin_tone``,
``flag_for_cote_d_ivoire``, ...), one per line, 20% of the names held out
(:func:`~greedylr.evidence.workloads.data.emoji_names`; 56,775 train / 14,377 held-out
characters): a held-out name is read character by character. The held-out metric is the
per-character perplexity; on the scored half, the training names' character
frequencies score 21.0 and a character bigram model (add-one) 10.0, this model 3.24.
RMSprop's optimum is a plateau with a cliff above it: 2% worse at 3.16x the LR, the
run wrecked at 10x. The eleventh probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import VOCAB, emoji_names
from greedylr.evidence.workloads.stdlib_char_transformer import fit_char_lm

__all__ = ["train"]

SEQ = 64
BATCH = 16


class _TCNBlock(nn.Module):
    """``x + relu(conv2(relu(conv1(x))))``, both convolutions causal (left-padded) and
    dilated by ``dilation``."""

    def __init__(self, channels: int, dilation: int, kernel: int = 3) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        h = torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0))))
        h = torch.relu(self.conv2(nn.functional.pad(h, (self.pad, 0))))
        return x + h


class _TCN(nn.Module):
    """Character embeddings -> three residual TCN blocks -> logits."""

    def __init__(self, vocab: int, channels: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, channels)
        self.blocks = nn.Sequential(*(_TCNBlock(channels, d) for d in (1, 2, 4)))
        self.out = nn.Conv1d(channels, vocab, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, vocab]
        return self.out(self.blocks(self.embed(x).transpose(1, 2))).transpose(1, 2)


def train(trial) -> None:
    train_stream, test_stream = emoji_names()
    fit_char_lm(trial, _TCN(len(VOCAB)), train_stream, test_stream, SEQ, BATCH)


register(
    Workload(
        name="emoji_name_tcn",
        train=train,
        task="language_modelling",
        family="tcn",
        data="the emoji's short names (shipped by rich, _emoji_codes), characters, whole "
             "names held out (56,775 train / 14,377 held-out characters)",
        lr=0.00316,
        steps=600,
        optimizer="rmsprop",
        eval_every=60,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=300,
    )
)
