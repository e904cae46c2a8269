"""Pre-training a Llama-architecture model from scratch, with the paper's recipe shape.

The paper (section 4.2.2) pre-trained Llama-3.2-1B for 1,000 steps: warmup 100, batch 1
with gradient accumulation 32, bf16, peak LR 2e-4, and GreedyLR with F 0.95, a
minimum LR of 1.85e-5 and smoothing. :data:`PAPER_RECIPE` keeps exactly that as a ready
configuration for a GPU machine (run it with ``benchmarks/llama_gpu_recipe.py``);
:data:`TINY_RECIPE` is the same shape scaled to a laptop CPU: a 2-layer, hidden-128
Llama over raw bytes (vocab 256) of the CPython standard library source, 60 optimizer
steps, each accumulating 4 micro-batches of 4 x 64 bytes.

The held-out metric is the perplexity (and, for byte-level models, bits per byte) on
standard-library files that training never sees (split by file, as in
:func:`greedylr.evidence.workloads.data.stdlib_files`). Evaluation uses a fixed
set of evenly spaced windows, identical for every trial, so that numbers compare.

Workload settings (``trial.options``):
    workload_recipe: ``"tiny"`` (default) or ``"paper"``; the recipe's training shape
        (sequence length, micro-batch, accumulation, precision, clip) and model.
    workload_grad_accum, workload_micro_batch, workload_seq_len,
    workload_eval_batches: override the recipe's values (tests use small ones).

The study gives the schedule, optimizer, seed, steps, warmup and peak LR; the recipe
gives :meth:`LlamaRecipe.greedy_settings` for the GreedyLR trials.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

from greedylr._extras import requires_extra
from greedylr.evidence.workloads import Workload, register
from greedylr.studies.trial import Trial

__all__ = [
    "DEFAULT_LR",
    "PAPER_RECIPE",
    "RECIPES",
    "TINY_RECIPE",
    "LlamaRecipe",
    "build_model",
    "byte_streams",
    "pretrain",
    "recipe_for",
    "train",
]


@dataclass(frozen=True)
class LlamaRecipe:
    """A Llama model and the way to train it, in one object.

    The model fields are :class:`transformers.LlamaConfig` arguments; the training
    fields are the recipe's. ``steps`` counts optimizer steps; each accumulates
    ``grad_accum`` micro-batches of ``micro_batch`` sequences of ``seq_len`` tokens.
    """

    name: str
    # model
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    # training
    steps: int = 1000
    warmup: int = 100
    micro_batch: int = 1
    grad_accum: int = 32
    seq_len: int = 2048
    lr: float = 2e-4
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    weight_decay: float = 0.1
    clip: float = 1.0
    precision: Literal["bf16", "fp32"] = "bf16"
    # GreedyLR, as the paper ran it
    factor: float = 0.95
    min_lr: float = 1.85e-5
    smoothing: Literal["window", "ema", "none"] = "window"
    # evaluation
    eval_every: int = 250
    eval_batches: int = 8

    def llama_config(self, **overrides: Any) -> Any:
        """The :class:`transformers.LlamaConfig` of this recipe's model."""
        with requires_extra("bench", "the Llama workload"):
            from transformers import LlamaConfig

        config = {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "max_position_embeddings": max(512, self.seq_len),
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            **overrides,
        }
        return LlamaConfig(**config)

    def greedy_settings(self) -> dict[str, Any]:
        """The GreedyLR settings of the recipe (the study's ``settings`` for ``greedy``).

        ``min_lr`` is given relative to the peak LR (1.85e-5 / 2e-4 = 0.0925 in the
        paper), so that a study that changes the peak LR keeps the recipe's proportion.
        """
        return {
            "factor": self.factor,
            "min_lr_ratio": self.min_lr / self.lr,
            "smoothing": self.smoothing,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PAPER_RECIPE = LlamaRecipe(
    name="paper",
    # Llama-3.2-1B's published architecture (16 layers, intermediate 8192, GQA 32/8,
    # rope theta 500k, tied embeddings, the Llama-3 tokenizer's 128,256 tokens).
    vocab_size=128256,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    rope_theta=500000.0,
    steps=1000,
    warmup=100,
    micro_batch=1,
    grad_accum=32,
    seq_len=2048,
    lr=2e-4,
    precision="bf16",
    factor=0.95,
    min_lr=1.85e-5,
    eval_every=250,
    eval_batches=64,
)
"""The paper's Llama-3.2-1B pre-training recipe (section 4.2.2), for a GPU."""

TINY_RECIPE = LlamaRecipe(
    name="tiny",
    vocab_size=256,  # raw bytes: no tokenizer to train, nothing to download
    hidden_size=128,
    intermediate_size=344,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    steps=60,
    warmup=6,  # the paper's 10% warmup
    micro_batch=4,
    grad_accum=4,  # the accumulation shape, at a CPU's size: 16 x 64 bytes per step
    seq_len=64,
    lr=2e-3,  # a 460k-parameter model takes a ~10x larger LR than a 1B one
    precision="fp32",
    factor=0.95,
    min_lr=2e-3 * (1.85e-5 / 2e-4),  # the paper's min/peak proportion
    eval_every=30,
    eval_batches=16,
)
"""The same recipe shape scaled to a CPU: ~460k parameters, byte-level."""

RECIPES: dict[str, LlamaRecipe] = {r.name: r for r in (TINY_RECIPE, PAPER_RECIPE)}

DEFAULT_LR = TINY_RECIPE.lr


def build_model(recipe: LlamaRecipe, **config_overrides: Any) -> nn.Module:
    """A freshly initialised ``LlamaForCausalLM`` (seeded by the caller's torch seed)."""
    with requires_extra("bench", "the Llama workload"):
        from transformers import LlamaForCausalLM

    return LlamaForCausalLM(recipe.llama_config(**config_overrides))


@functools.lru_cache(maxsize=2)
def byte_streams() -> tuple[torch.Tensor, torch.Tensor]:
    """The stdlib source as UTF-8 bytes, (train, held out), split by file.

    Files are joined with a form feed, a byte that is rare in source, so that a window
    spanning two files shows a boundary rather than fake code.
    """
    from greedylr.evidence.workloads.data import stdlib_files

    sides: dict[bool, list[bytes]] = {False: [], True: []}
    for _, text, held_out in stdlib_files():
        sides[held_out].append(text.encode("utf-8"))
    train, test = (b"\x0c".join(sides[s]) for s in (False, True))
    return (
        torch.frombuffer(bytearray(train), dtype=torch.uint8),
        torch.frombuffer(bytearray(test), dtype=torch.uint8),
    )


def _windows(stream: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    offsets = torch.arange(length)
    return stream[starts[:, None] + offsets[None, :]].long()


def _train_batches(
    stream: torch.Tensor, batch: int, length: int, seed: int
) -> Iterator[torch.Tensor]:
    """Random windows of the training stream, from a generator of the trial's seed."""
    generator = torch.Generator().manual_seed(seed)
    high = len(stream) - length
    while True:
        yield _windows(stream, torch.randint(0, high, (batch,), generator=generator), length)


def _eval_windows(stream: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """``count`` windows evenly spaced over the held-out stream: the same for every trial."""
    starts = torch.linspace(0, len(stream) - length - 1, count).long()
    return _windows(stream, starts, length)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pretrain(
    trial: Trial,
    recipe: LlamaRecipe,
    train_ids: torch.Tensor,
    test_ids: torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    bytes_per_token: float | None = None,
) -> nn.Module:
    """Pre-train a fresh model of ``recipe`` under the trial's schedule and optimizer.

    Args:
        trial: the trial; its steps, warmup, LR, optimizer and schedule are used.
        recipe: the model and the training shape (micro-batch, accumulation, precision).
        train_ids, test_ids: 1-D token streams (any integer dtype).
        device: where to train.
        bytes_per_token: reported with ``bpb`` (bits per byte) when given.

    Returns:
        The trained model. Held-out ``loss`` and ``perplexity`` (and ``bpb``) are
        reported at every evaluation; the training loss of a step is the mean over
        its micro-batches, the value the schedule sees.
    """
    device = torch.device(device)
    model = build_model(recipe).to(device)
    model.train()
    optimizer = trial.optimizer(model.parameters(), weight_decay=recipe.weight_decay)
    trial.scheduler(optimizer)

    batches = _train_batches(train_ids, recipe.micro_batch, recipe.seq_len + 1, trial.seed)
    held_out = _eval_windows(test_ids, recipe.eval_batches * recipe.micro_batch, recipe.seq_len + 1)
    for _ in range(trial.steps):
        total = torch.zeros((), device=device)
        for _ in range(recipe.grad_accum):
            window = next(batches).to(device, non_blocking=True)
            with _autocast(device, recipe.precision):
                logits = model(input_ids=window[:, :-1]).logits
            loss = nn.functional.cross_entropy(
                logits.float().flatten(0, 1), window[:, 1:].flatten()
            )
            (loss / recipe.grad_accum).backward()
            total += loss.detach()
        if recipe.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        trial.step(total / recipe.grad_accum)  # one host sync per optimizer step
        if trial.should_eval():
            with trial.evaluating(model):
                trial.report(**_evaluate(model, held_out, recipe, device, bytes_per_token))
    return model


def _evaluate(
    model: nn.Module,
    windows: torch.Tensor,
    recipe: LlamaRecipe,
    device: torch.device,
    bytes_per_token: float | None,
) -> dict[str, float]:
    total, count = 0.0, 0
    for chunk in windows.split(recipe.micro_batch):
        chunk = chunk.to(device)
        with _autocast(device, recipe.precision):
            logits = model(input_ids=chunk[:, :-1]).logits
        total += float(
            nn.functional.cross_entropy(
                logits.float().flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum"
            )
        )
        count += chunk[:, 1:].numel()
    loss = total / count
    out = {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}
    if bytes_per_token:
        out["bpb"] = loss / math.log(2) / bytes_per_token
    return out


def recipe_for(trial: Trial) -> LlamaRecipe:
    """The trial's recipe: ``workload_recipe`` plus any ``workload_*`` shape overrides."""
    options = trial.options
    name = str(options.get("workload_recipe", "tiny"))
    if name not in RECIPES:
        raise ValueError(f"unknown workload_recipe {name!r}; known: {', '.join(RECIPES)}")
    overrides: dict[str, Any] = {
        key: int(options[f"workload_{key}"])
        for key in ("grad_accum", "micro_batch", "seq_len", "eval_batches")
        if f"workload_{key}" in options
    }
    return replace(RECIPES[name], **overrides)


def train(trial: Trial) -> None:
    """The registered workload: the tiny recipe on stdlib bytes, on the CPU."""
    recipe = recipe_for(trial)
    if recipe.vocab_size != 256:
        raise ValueError(
            f"the {recipe.name!r} recipe needs a tokenizer (vocab {recipe.vocab_size}); "
            "run it with benchmarks/llama_gpu_recipe.py"
        )
    train_ids, test_ids = byte_streams()
    pretrain(trial, recipe, train_ids, test_ids, bytes_per_token=1.0)


register(
    Workload(
        name="llama_pretrain",
        train=train,
        task="language_modelling",
        family="llama",
        data="CPython stdlib source, raw bytes (file-disjoint split, 1 file in 8 held out)",
        lr=TINY_RECIPE.lr,
        steps=TINY_RECIPE.steps,  # sized for two CPU cores shared by a team
        optimizer="adamw",
        warmup=TINY_RECIPE.warmup,
        eval_every=TINY_RECIPE.eval_every,
        metric="perplexity",
        higher_is_better=False,
        quick_steps=20,
        lrs=(("adafactor", TINY_RECIPE.lr),),
    )
)
