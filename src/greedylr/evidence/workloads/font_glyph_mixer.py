"""Character recognition in unseen fonts: an MLP-Mixer (Tolstikhin et al. 2021) names a
24x24 image of a letter or digit (62 classes), AdamW.

The data is matplotlib's bundled fonts, each one's glyphs rendered and randomly scaled,
rotated, sheared and shifted; two whole typefaces (the four DejaVu Serif fonts and
Computer Modern Sans Serif) are held out (:func:`~greedylr.evidence.workloads.data.
font_glyphs`), so the held-out accuracy is on fonts the model never saw (cross-entropy as
the held-out loss). Round 14's probe split.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import GLYPH_CHARS, font_glyphs
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["train"]


class _MixerBlock(nn.Module):
    """Mix across the patches (one MLP per channel), then across the channels (one MLP per
    patch), each pre-normed and residual."""

    def __init__(self, patches: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.tokens = nn.Sequential(nn.Linear(patches, token_hidden), nn.GELU(),
                                    nn.Linear(token_hidden, patches))
        self.norm2 = nn.LayerNorm(dim)
        self.channels = nn.Sequential(nn.Linear(dim, channel_hidden), nn.GELU(),
                                      nn.Linear(channel_hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channels(self.norm2(x))


class _Mixer(nn.Module):
    def __init__(self, classes: int, size: int = 24, patch: int = 4, dim: int = 64,
                 depth: int = 4) -> None:
        super().__init__()
        patches = (size // patch) ** 2
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)  # one linear map per patch
        self.blocks = nn.Sequential(*(_MixerBlock(patches, dim, 2 * patches, 2 * dim)
                                      for _ in range(depth)))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.embed(x).flatten(2).transpose(1, 2))
        return self.head(h.mean(dim=1))


def train(trial) -> None:
    fit_classifier(trial, _Mixer(len(GLYPH_CHARS)), font_glyphs(), 64)


register(
    Workload(
        name="font_glyph_mixer",
        train=train,
        task="classification",
        family="mlp_mixer",
        data="matplotlib's bundled fonts, 62 letters and digits rendered 24x24 with random "
             "affine jitter (25,296 train from 17 fonts / 2,480 held out from 5 fonts, "
             "whole typefaces held out)",
        lr=1e-3,
        steps=400,
        optimizer="adamw",
        eval_every=40,
        quick_steps=200,
    )
)
