"""Which function does this docstring describe? A dual encoder trained contrastively
(Radford et al. 2021's CLIP objective: a batch's signatures and docstrings embedded
apart, each pair's cosine similarity against every other pairing of the batch, a
symmetric cross-entropy, a learned temperature started at 1/0.07), AdamW, batches of
128.

The data is the transformers library's own source
(:func:`~greedylr.evidence.workloads.data.transformers_docstrings`: 1,022 train / 339
held-out pairs of a public function's name and parameter names and its docstring's
first line, no signature, first line or template twice, held out at random). Each
side is the mean of its words' embeddings (256, one table for both sides, whose words
overlap) plus its own two-layer MLP of it (GELU, 256), normalized. The held-out metric
is the retrieval NLL: each held-out first line against every held-out signature of its
half, the cross-entropy of the true one. The fifteenth probe split."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import transformers_docstrings
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["train"]


class _DualEncoder(nn.Module):
    def __init__(self, ids: int, embed: int = 256, width: int = 256, out: int = 256) -> None:
        super().__init__()
        self.embed = nn.Embedding(ids, embed, padding_idx=0)

        def tower() -> nn.Module:
            return nn.Sequential(nn.Linear(embed, width), nn.GELU(), nn.Linear(width, out))

        self.code, self.doc = tower(), tower()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def _bag(self, ids: torch.Tensor, tower: nn.Module) -> torch.Tensor:  # [B, W] -> [B, out]
        mask = (ids > 0).unsqueeze(-1).float()
        mean = (self.embed(ids) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return F.normalize(mean + tower(mean), dim=-1)

    def forward(self, code: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
        """[B, B] logits: row i is docstring i against every signature."""
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()  # CLIP's cap
        return scale * self._bag(doc, self.doc) @ self._bag(code, self.code).T


def _contrastive(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    logits = model(*batch)
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _retrieval_metrics(model: nn.Module, code: torch.Tensor, doc: torch.Tensor
                       ) -> dict[str, float]:
    logits = model(code, doc)
    target = torch.arange(len(logits))
    nll = F.cross_entropy(logits, target).item()
    return {"nll": nll, "recall_at_1": (logits.argmax(-1) == target).float().mean().item(),
            "loss": nll}


def train(trial) -> None:
    data, ids = transformers_docstrings()
    run(trial, _DualEncoder(ids),
        batch_sampler(data.x_train, data.y_train, 128), _contrastive,
        split_evaluator(trial, _retrieval_metrics, data.x_test, data.y_test))


register(
    Workload(
        name="transformers_docstring_dual_encoder",
        train=train,
        task="classification",
        family="dual_encoder",
        data="the transformers library's source, a function's signature <-> its "
             "docstring's first line (1,022 train / 339 held-out pairs)",
        lr=0.000316,
        steps=400,
        optimizer="adamw",
        eval_every=40,
        metric="nll",
        higher_is_better=False,
        quick_steps=200,
    )
)
