"""Sequence to sequence: from a function's docstring (first line) to the function's name.

Pairs come from the standard library's own source via ``ast`` ("Return the platform tag
of the system Python was built on." -> ``aix_buildtag``); held-out pairs come from files
the model never saw. A small character-level encoder-decoder transformer (the T5/BART
family of the paper's seq2seq runs, shrunk), Adafactor as in T5's recipe.

Held-out metrics: character accuracy of the name under teacher forcing (the metric of
record: smooth enough to compare schedules) and exact match of the greedily decoded name.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import (
    DOCSTRING_MAX,
    NAME_MAX,
    VOCAB,
    docstring_pairs,
    padded,
)
from greedylr.evidence.workloads.loop import run, split_evaluator

__all__ = ["Seq2Seq", "train"]

BATCH = 32
TGT_MAX = NAME_MAX + 2  # <bos> name <eos>


@functools.cache
def _tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    train, test = docstring_pairs()

    def encode(pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        src = padded((VOCAB.encode(doc) for doc, _ in pairs), DOCSTRING_MAX)
        tgt = padded(([VOCAB.BOS, *VOCAB.encode(name), VOCAB.EOS] for _, name in pairs),
                     TGT_MAX)
        return torch.from_numpy(src), torch.from_numpy(tgt)

    return (*encode(train), *encode(test))


class Seq2Seq(nn.Module):
    """Shared character embedding, learned positions, ``nn.Transformer``, tied head."""

    def __init__(self, vocab: int, dim: int = 48, layers: int = 1, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=VOCAB.PAD)
        # small init: the head is tied, and N(0, 1) embeddings start at a loss of ~14
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[VOCAB.PAD].zero_()
        self.src_pos = nn.Parameter(torch.randn(1, DOCSTRING_MAX, dim) * 0.02)
        self.tgt_pos = nn.Parameter(torch.randn(1, TGT_MAX, dim) * 0.02)
        with warnings.catch_warnings():
            # nn.Transformer asks for nested tensors, which pre-LN layers cannot use
            warnings.filterwarnings("ignore", message="enable_nested_tensor")
            self.core = nn.Transformer(
                dim, heads, layers, layers, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
            )
        self.norm = nn.LayerNorm(dim)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        h = self.embed(src) + self.src_pos[:, : src.shape[1]]
        return self.core.encoder(h, src_key_padding_mask=src == VOCAB.PAD)

    def decode(self, memory: torch.Tensor, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        t = tgt_in.shape[1]
        h = self.embed(tgt_in) + self.tgt_pos[:, :t]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        h = self.core.decoder(
            h, memory, tgt_mask=mask, tgt_is_causal=True, memory_key_padding_mask=src == VOCAB.PAD
        )
        return self.norm(h) @ self.embed.weight.T

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(src), src, tgt_in)

    @torch.no_grad()
    def generate(self, src: torch.Tensor) -> torch.Tensor:
        """Greedy decoding, up to ``TGT_MAX - 1`` characters after ``<bos>``."""
        memory = self.encode(src)
        out = torch.full((len(src), 1), VOCAB.BOS, dtype=torch.long)
        for _ in range(TGT_MAX - 1):
            nxt = self.decode(memory, src, out)[:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, nxt], dim=1)
        return out


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    src, tgt = batch
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=VOCAB.PAD
    )


def _exact(generated: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Whether each decoded name equals the reference up to (and including) ``<eos>``."""
    ok = torch.ones(len(tgt), dtype=torch.bool)
    for i in range(len(tgt)):
        ref = tgt[i, 1:].tolist()
        ref = ref[: ref.index(VOCAB.EOS) + 1]
        ok[i] = generated[i, 1 : 1 + len(ref)].tolist() == ref
    return ok


def train(trial) -> None:
    src_tr, tgt_tr, src_te, tgt_te = _tensors()

    def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(src_tr), (BATCH,), generator=g)
        return src_tr[idx], tgt_tr[idx]

    def metrics(model: nn.Module, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, float]:
        assert isinstance(model, Seq2Seq)
        logits = model(src, tgt[:, :-1])
        target = tgt[:, 1:]
        keep = target != VOCAB.PAD
        char_acc = (logits.argmax(-1) == target)[keep].float().mean().item()
        loss = F.cross_entropy(logits[keep], target[keep]).item()
        out = {"char_accuracy": char_acc, "loss": loss}
        if trial.current_step == trial.steps:
            # greedy decoding costs ~25 forward passes: only for the final evaluation
            out["exact_match"] = _exact(model.generate(src), tgt).float().mean().item()
        return out

    run(trial, Seq2Seq(len(VOCAB)), sample, _loss, split_evaluator(trial, metrics, src_te, tgt_te))


register(
    Workload(
        name="docstring_seq2seq",
        train=train,
        task="seq2seq",
        family="transformer_encoder_decoder",
        data="CPython stdlib: docstring first line -> function name (ast; ~2.4k/270 pairs)",
        lr=3e-3,
        steps=200,
        optimizer="adafactor",
        eval_every=50,
        metric="char_accuracy",
        quick_steps=100,
        lrs=(("adamw", 1e-3),),
    )
)
