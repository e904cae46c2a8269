"""A masked character language model (BERT, Devlin et al. 2019, at the character
level): a bidirectional transformer encoder over 64 characters of Python source (2
pre-norm layers of width 32, 2 heads, MLPs of 128, GELU) predicting the characters
hidden at 15% of the positions. Positions are a learned 64x32 matrix plus ALiBi's
linear distance penalty on the attention logits (Press et al. 2022), made symmetric for
an encoder, slopes 1 and 1/4 a character (without it, the same model learns little
past a bigram model in the budget). Every parameter is a matrix (no biases, layer norms
without affine weights, an untied output matrix), so that Muon (Jordan et al. 2024;
torch's ``Muon``) trains every one of them; batches of 32 windows.

The data is networkx's own Python source (a dependency of torch), its ``tests``
packages left out, as :data:`~greedylr.evidence.workloads.data.VOCAB` ids (tabs and
non-ASCII characters are its unknown id) plus one id for the mask. Whole files are held
out, one in eight by a hash of the path (``data._held_out``, as the stdlib corpora:
251 training files, 3.59M characters; 37 held out). networkx repeats itself across
modules, so a held-out file that shares a fifth or more of its 64-character runs with
the training files is dropped as a near copy: ``classes/multigraph.py`` (65%: it
repeats ``classes/graph.py``'s docstrings), ``algorithms/flow/shortestaugmentingpath.py``
(53%) and ``readwrite/graph6.py`` (27%); the next most shared keeps 16% (34 files,
340k characters, kept). Training windows start anywhere in the training files' text
(joined in path order); 10 of each window's 64 positions, drawn afresh for every batch
from the trial's generator, are hidden as BERT does: 80% become the mask id, 10% a
random printable character, 10% stay. The loss is the cross-entropy at the hidden
positions.

The held-out metric, ``masked_nll`` (nats a hidden character), is the same loss on 256
fixed windows of the kept held-out files: non-overlapping, drawn from those that share
no 32-character run with the training text (3,778 of 5,305), and hidden once from
:data:`~greedylr.evidence.workloads.data.SPLIT_SEED`: the same positions and
replacements for every schedule, seed and evaluation (2,560 hidden characters). For
scale, on the scored half: the training text's character frequencies give 3.26, a
table of the character between each pair of neighbours (counted on the training text)
2.49, cosine at this ``lr`` 2.24. The text depends on networkx's version (3.6.1 for
the committed results). The sixteenth probe split."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import SPLIT_SEED, VOCAB, _held_out
from greedylr.evidence.workloads.loop import run, split_evaluator

__all__ = ["CONTEXT", "MASK", "NetworkxText", "masked", "networkx_files", "networkx_windows",
           "train"]

#: Characters a window holds.
CONTEXT = 64
#: The id of the mask (one past :data:`VOCAB`'s); the model predicts only ``VOCAB`` ids.
MASK = len(VOCAB)
#: Positions hidden in each window (15%, as BERT).
HIDDEN = round(0.15 * CONTEXT)
#: Held-out windows scored.
HELD_OUT_WINDOWS = 256
#: No held-out window shares a run of this many characters with the training text.
CLEAN_RUN = 32
#: A held-out file sharing at least ``NEAR_COPY`` of its ``COPY_RUN``-character runs
#: with the training files is a near copy, and dropped.
COPY_RUN, NEAR_COPY = 64, 0.2
#: The target of an unhidden position (ignored by the loss).
IGNORE = -100
BATCH = 32
WIDTH, HEADS, LAYERS, MLP = 32, 2, 2, 4
#: Each head's ALiBi slope: its attention logits fall by this much a character of distance.
SLOPES = (1.0, 0.25)

_PRINTABLE = (4, len(VOCAB))  # VOCAB's ids of newline and printable ASCII


@functools.cache
def networkx_files() -> tuple[tuple[str, str, bool], ...]:
    """``(relative path, source, held out?)`` of every networkx module outside its
    ``tests`` packages, sorted by path."""
    spec = importlib.util.find_spec("networkx")
    if spec is None or spec.origin is None:
        raise RuntimeError("networkx (a dependency of torch) is not installed")
    root = Path(spec.origin).parent
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "tests" not in rel.parts:
            out.append((rel.as_posix(), path.read_text(encoding="utf-8"),
                        _held_out(rel.as_posix())))
    if not out:
        raise RuntimeError(f"no Python source found under {root}")
    return tuple(out)


def _run_hashes(ids: np.ndarray, length: int) -> np.ndarray:
    """A polynomial hash (mod 2**64) of every ``length``-long run of ``ids``, in order."""
    if len(ids) < length:
        return np.zeros(0, dtype=np.uint64)
    base = np.uint64(1_000_003)  # odd, so invertible mod 2**64
    inverse = np.uint64(pow(1_000_003, -1, 2**64))
    with np.errstate(over="ignore"):
        powers = np.concatenate([[np.uint64(1)], np.cumprod(
            np.full(len(ids) - 1, base, dtype=np.uint64))])
        inverses = np.concatenate([[np.uint64(1)], np.cumprod(
            np.full(len(ids) - length, inverse, dtype=np.uint64))])
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(ids.astype(np.uint64) * powers)])
        return (prefix[length:] - prefix[:-length]) * inverses


def _among(values: np.ndarray, sorted_: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_)`` for a sorted ``sorted_`` (numpy 2.4's ``isin`` and
    ``unique`` take seconds on millions of 64-bit hashes; a sort and a search do not)."""
    order = np.argsort(values)  # sorted queries: the search walks memory in order
    at = np.searchsorted(sorted_, values[order]).clip(max=len(sorted_) - 1)
    out = np.empty(len(values), dtype=bool)
    out[order] = sorted_[at] == values[order]
    return out


@dataclass(frozen=True)
class NetworkxText:
    """The split: the training text as one stream of ids, and the held-out windows with
    their fixed hiding (row-aligned)."""

    train: torch.Tensor  #: [chars] the training files' ids, joined in path order
    windows: torch.Tensor  #: [N, CONTEXT] held-out windows, their true ids
    inputs: torch.Tensor  #: [N, CONTEXT] the same, hidden (the model's input)
    targets: torch.Tensor  #: [N, CONTEXT] the true id where hidden, else ``IGNORE``
    held_out_files: tuple[str, ...]  #: the held-out files the windows come from
    dropped: tuple[str, ...]  #: held-out files dropped as near copies of training files


def masked(windows: torch.Tensor, generator: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``: ``HIDDEN`` positions of each window hidden as BERT does
    (80% the mask id, 10% a random printable character, 10% unchanged), drawn from
    ``generator``; ``targets`` is the true id there and ``IGNORE`` elsewhere."""
    rows = len(windows)
    where = torch.rand(rows, CONTEXT, generator=generator).argsort(1)[:, :HIDDEN]
    how = torch.rand(rows, HIDDEN, generator=generator)
    random_ids = torch.randint(*_PRINTABLE, (rows, HIDDEN), generator=generator)
    true = windows.gather(1, where)
    hidden = torch.where(how < 0.8, torch.full_like(true, MASK),
                         torch.where(how < 0.9, random_ids, true))
    inputs = windows.scatter(1, where, hidden)
    targets = torch.full_like(windows, IGNORE).scatter(1, where, true)
    return inputs, targets


@functools.cache
def networkx_windows() -> NetworkxText:
    """The split (see the module's docstring), fixed by :data:`SPLIT_SEED`."""
    files = networkx_files()
    train = np.concatenate([VOCAB.encode(text) for _, text, held in files if not held])

    def train_runs(length: int) -> np.ndarray:  # runs across file boundaries too
        return np.sort(_run_hashes(train, length))

    copies = train_runs(COPY_RUN)
    held_out_ids, kept, dropped = [], [], []
    for rel, text, held in files:
        if not held:
            continue
        ids = VOCAB.encode(text)
        runs = _run_hashes(ids, COPY_RUN)
        if len(runs) and _among(runs, copies).mean() >= NEAR_COPY:
            dropped.append(rel)
        else:
            held_out_ids.append(ids)
            kept.append(rel)
    stream = np.concatenate(held_out_ids)
    starts = np.arange(0, len(stream) - CONTEXT + 1, CONTEXT)
    shared = _among(_run_hashes(stream, CLEAN_RUN), train_runs(CLEAN_RUN))
    # a window [s, s + CONTEXT) is clean when none of its runs is a shared one
    clean = [s for s in starts if not shared[s:s + CONTEXT - CLEAN_RUN + 1].any()]
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    pick = torch.randperm(len(clean), generator=generator)[:HELD_OUT_WINDOWS].sort().values
    chosen = np.asarray(clean)[pick.numpy()]
    windows = torch.from_numpy(stream[chosen[:, None] + np.arange(CONTEXT)])
    inputs, targets = masked(windows, generator)
    return NetworkxText(torch.from_numpy(train), windows, inputs, targets, tuple(kept),
                        tuple(dropped))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width, elementwise_affine=False, bias=False)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.up = nn.Linear(width, mlp * width, bias=False)
        self.down = nn.Linear(mlp * width, width, bias=False)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = (self.qkv(self.norm(h)).view(b, n, 3, self.heads, d // self.heads)
                   .permute(2, 0, 3, 1, 4))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # no causal mask
        h = h + self.proj(attended.transpose(1, 2).reshape(b, n, d))
        return h + self.down(F.gelu(self.up(self.norm(h))))


class _Encoder(nn.Module):
    bias: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, width: int, heads: int, layers: int, mlp: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(MASK + 1, width)
        self.position = nn.Parameter(torch.randn(CONTEXT, width) * 0.02)
        self.blocks = nn.ModuleList(_Block(width, heads, mlp) for _ in range(layers))
        self.norm = nn.LayerNorm(width, elementwise_affine=False, bias=False)
        self.head = nn.Linear(width, len(VOCAB), bias=False)
        # ALiBi's distance penalty, symmetric (the encoder looks both ways), a slope a head
        distance = (torch.arange(CONTEXT)[:, None] - torch.arange(CONTEXT)).abs()
        slopes = torch.tensor(SLOPES[:heads])[:, None, None]
        self.register_buffer("bias", -slopes * distance, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, L, vocab]
        n = ids.shape[1]
        h = self.embed(ids) + self.position[:n]
        for block in self.blocks:
            h = block(h, self.bias[:, :n, :n])
        return self.head(self.norm(h))


def _loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(),
                           ignore_index=IGNORE)


def _metrics(model: nn.Module, windows: torch.Tensor, inputs: torch.Tensor,
             targets: torch.Tensor) -> dict[str, float]:
    total, count = 0.0, 0
    for i in range(0, len(inputs), 256):  # in chunks, to bound attention's memory
        chunk = targets[i:i + 256]
        total += F.cross_entropy(model(inputs[i:i + 256]).flatten(0, 1), chunk.flatten(),
                                 ignore_index=IGNORE, reduction="sum").item()
        count += int((chunk != IGNORE).sum())
    nll = total / count
    return {"masked_nll": nll, "loss": nll}


def train(trial) -> None:
    data = networkx_windows()
    stream = data.train
    offsets = torch.arange(CONTEXT)

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(len(stream) - CONTEXT + 1, (BATCH, 1), generator=generator)
        return masked(stream[starts + offsets], generator)

    run(trial, _Encoder(WIDTH, HEADS, LAYERS, MLP), sample, lambda m, b: _loss(m, *b),
        split_evaluator(trial, _metrics, data.windows, data.inputs, data.targets))


register(
    Workload(
        name="networkx_source_mlm",
        train=train,
        task="language_modelling",
        family="masked_lm",
        data="networkx's Python source, 64-character windows with 15% of the characters "
             "hidden -> those characters (3.59M training characters of 251 files / 256 "
             "held-out windows of 34 other files)",
        lr=0.0632,
        steps=150,
        optimizer="muon",
        eval_every=15,
        metric="masked_nll",
        higher_is_better=False,
        quick_steps=75,
    )
)
