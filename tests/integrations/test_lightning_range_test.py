"""``greedylr.integrations.lightning.range_test`` on a real Lightning Trainer (no mocks):
scikit-learn's digits, a linear classifier with two param groups and momentum, one CPU
process. Every sweep is short (30-40 steps) to keep the file fast."""

from __future__ import annotations

import copy
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.callbacks import (  # noqa: E402
    GradientAccumulationScheduler,
    LearningRateFinder,
)
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from lightning.pytorch.utilities.exceptions import MisconfigurationException  # noqa: E402

from greedylr import GreedyLR, lr_range_test  # noqa: E402
from greedylr.integrations.lightning import GreedyLRCallback, range_test  # noqa: E402
from greedylr.range_test import sweep_multipliers  # noqa: E402
from integrations.test_lightning import _Classifier, _digits  # noqa: E402
from spawning import free_loopback_port, loopback_rank_environment, spawn_ranks  # noqa: E402

BATCH = 16
BIAS_RATIO = 0.1  # the second param group's LR, as a multiple of the first's


def _data() -> torch.utils.data.Dataset:
    """5 batches of 16: with accumulation 2, every epoch ends in a short window of one
    micro-batch."""
    return torch.utils.data.Subset(_digits(), range(80))


class _TunableLR(_Classifier):
    """The LR as an attribute that ``configure_optimizers`` reads, as range_test (and
    Lightning's tuner) expects."""

    def __init__(self, data: torch.utils.data.TensorDataset) -> None:
        super().__init__(data)
        self.lr = 0.05

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": GreedyLR(optimizer), "interval": "step"}}


class _Swept(_Classifier):
    """Two param groups (weights at ``lr``, biases at a tenth of it), SGD with momentum,
    and a record of the LRs each optimizer step applied (the module's own hooks run in
    the sweep too)."""

    def __init__(self, data: Any, lr: float, shuffle: bool = False) -> None:
        super().__init__(data)
        self.lr = lr
        self.shuffle = shuffle
        self.step_lrs: list[list[float]] = []

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.data, batch_size=BATCH, shuffle=self.shuffle)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.step_lrs.append([float(group["lr"]) for group in optimizer.param_groups])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([{"params": [self.net.weight], "lr": self.lr},
                                {"params": [self.net.bias], "lr": self.lr * BIAS_RATIO}],
                               momentum=0.9)


def _trainer(tmp_path: Path, **kwargs: Any) -> pl.Trainer:
    settings: dict[str, Any] = {
        "accelerator": "cpu", "devices": 1, "max_steps": 6, "logger": False,
        "enable_progress_bar": False, "enable_model_summary": False,
        "enable_checkpointing": False, "default_root_dir": tmp_path,
    }
    return pl.Trainer(**{**settings, **kwargs})


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


class _Batches(pl.Callback):
    """Counts the training batches its trainer's callbacks were called for."""

    def __init__(self) -> None:
        self.seen = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1


class _Validated(_Swept):
    """Counts its validation batches."""

    def __init__(self, data: Any, lr: float, shuffle: bool) -> None:
        super().__init__(data, lr, shuffle)
        self.validated = 0

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.validated += 1

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.data, batch_size=len(self.data))


def test_the_trainer_is_put_back_and_the_fit_starts_at_the_suggestion(tmp_path: Path) -> None:
    """After the test, the weights, the loops' state, the callbacks, loggers and limits are
    those before it, and nothing reached the callbacks or the logger; the fit then trains
    exactly as a fresh one whose LR was set to the suggestion by hand (shuffled data: the
    random number generators were put back too), from its first optimizer step."""
    data = _data()
    model = _Validated(data, lr=0.05, shuffle=True)
    batches = _Batches()
    trainer = _trainer(tmp_path, accumulate_grad_batches=2, log_every_n_steps=1,
                       logger=CSVLogger(tmp_path / "logs"), callbacks=[batches])
    weights = _weights(model)
    loop_state = copy.deepcopy(trainer.fit_loop.state_dict())
    callbacks, contents = trainer.callbacks, list(trainer.callbacks)
    loggers = trainer.loggers
    rng = torch.get_rng_state()

    result = range_test(trainer, model, steps=30)

    assert len(model.step_lrs) == len(result.losses) > 1  # the sweep did train
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert trainer.global_step == 0 and trainer.current_epoch == 0
    assert trainer.fit_loop.state_dict() == loop_state
    assert trainer.callbacks is callbacks and trainer.callbacks == contents
    assert batches.seen == 0 and model.validated == 0
    assert trainer.loggers is loggers
    assert (trainer.max_steps, trainer.max_epochs, trainer.limit_val_batches,
            trainer.accumulate_grad_batches, trainer.should_stop) == (6, -1, 1.0, 2, False)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.csv"))
    assert model.lr == pytest.approx(0.05 * result.suggested_multiplier) and model.lr != 0.05

    model.micro.clear()
    model.step_lrs.clear()
    trainer.fit(model)
    assert model.step_lrs[0] == pytest.approx([model.lr, model.lr * BIAS_RATIO])

    fresh = _Validated(data, lr=model.lr, shuffle=True)
    torch.set_rng_state(rng)
    _trainer(tmp_path / "fresh", accumulate_grad_batches=2).fit(fresh)
    assert model.micro == fresh.micro and len(model.micro) == 10 == batches.seen  # 2+2+1, 2x
    assert model.step_lrs == fresh.step_lrs


class _Counting(_Swept):
    """Buffers that training changes and checkpoints leave out (``persistent=False``), in
    the module and in a submodule."""

    def __init__(self, data: Any, lr: float) -> None:
        super().__init__(data, lr)
        self.register_buffer("batches_seen", torch.zeros(()), persistent=False)
        self.net.register_buffer("inputs_seen", torch.zeros(()), persistent=False)
        self.register_buffer("cache", torch.zeros(2), persistent=False)  # grows
        with torch.inference_mode():  # as a cache built in an earlier validate() would be
            self.register_buffer("table", torch.arange(3.0), persistent=False)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.batches_seen += 1
        self.net.inputs_seen += len(batch[0])
        if batch_idx == 1:
            self.cache = torch.zeros(len(self.cache) + 1)
        return super().training_step(batch, batch_idx)


def test_buffers_the_checkpoint_leaves_out_are_put_back_too(tmp_path: Path) -> None:
    """Put back in place; but a buffer rebuilt in another shape (a grown cache) stays as
    rebuilt, and one made under inference mode is replaced by its copy."""
    model = _Counting(_data(), lr=0.05)
    model.batches_seen.fill_(3.0)
    range_test(_trainer(tmp_path), model, steps=10)
    assert len(model.micro) == 10  # the sweep did train
    assert model.batches_seen.item() == 3.0 and model.net.inputs_seen.item() == 0.0
    assert len(model.cache) > 2
    assert model.table.tolist() == [0.0, 1.0, 2.0]


class _StopOnce(pl.Callback):
    """Stops the fit once, after its second optimizer step: mid-epoch."""

    def __init__(self) -> None:
        self.stopped = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == 2 and not self.stopped:
            trainer.should_stop = self.stopped = True


def _continued(tmp_path: Path, test: bool, by_epochs: bool) -> tuple[list[float], int, int]:
    """A fit stopped after two optimizer steps (mid-epoch), then, with or without the test,
    a fit that continues it: to the end of the second epoch, or to five steps."""
    model = _Swept(_data(), lr=0.05)
    if by_epochs:
        trainer = _trainer(tmp_path, max_steps=-1, max_epochs=2, accumulate_grad_batches=2,
                           callbacks=[_StopOnce()])
    else:
        trainer = _trainer(tmp_path, max_steps=2, accumulate_grad_batches=2)
    trainer.fit(model)
    trainer.fit_loop.epoch_loop.max_steps = -1 if by_epochs else 5
    if test:
        range_test(trainer, model, steps=10, update_attr=False)
    model.micro.clear()
    trainer.fit(model)
    return model.micro, trainer.global_step, trainer.current_epoch


@pytest.mark.parametrize("by_epochs", [False, True])
def test_a_fit_continued_mid_epoch_continues_as_without_the_test(
        tmp_path: Path, by_epochs: bool) -> None:
    """The loops' progress put back mid-epoch is not taken for a resumed checkpoint's."""
    without = _continued(tmp_path / "without", False, by_epochs)
    if by_epochs and not without[0]:
        pytest.skip(f"Lightning {pl.__version__} does not continue a fit stopped mid-epoch "
                    "by should_stop: there is nothing to compare")
    assert len(without[0]) == 5  # the micro-batches of the fit that continued
    assert _continued(tmp_path / "with", True, by_epochs) == without


def _windows(loader: torch.utils.data.DataLoader, size: int) -> Iterator[list[Any]]:
    """The micro-batches of each optimizer step, epoch after epoch, as Lightning groups
    them: ``size`` at a time, the last window of an epoch shorter if need be."""
    while True:
        batches = list(loader)
        for first in range(0, len(batches), size):
            yield batches[first:first + size]


def _plain_loop_range_test(data: Any, lr: float, accumulate: int, steps: int) -> Any:
    """``greedylr.lr_range_test`` on the same model and data, in a hand-written loop that
    takes the steps Lightning takes (each micro-batch's loss divided by ``accumulate``
    before its backward pass, a short window included) and returns the mean loss of the
    step's micro-batches."""
    model = _Swept(data, lr=lr)  # the same initial weights: _Classifier seeds them
    optimizer = model.configure_optimizers()
    windows = _windows(torch.utils.data.DataLoader(data, batch_size=BATCH), accumulate)

    def train_step() -> float:
        losses = []
        for x, y in next(windows):
            loss = torch.nn.functional.cross_entropy(model.net(x), y)
            (loss / accumulate).backward()
            losses.append(loss.item())
        optimizer.step()
        optimizer.zero_grad()
        return sum(losses) / len(losses)

    return lr_range_test(model, optimizer, train_step, steps=steps)


@pytest.mark.parametrize(("accumulate", "scheduled"), [
    pytest.param(1, False, id="accumulate-1"),
    pytest.param(2, False, id="accumulate-2"),
    pytest.param(2, True, id="accumulate-2-scheduled"),
])
def test_the_sweep_is_the_plain_loops_with_groups_at_their_ratio(
        tmp_path: Path, accumulate: int, scheduled: bool) -> None:
    """Lightning's fit loop, with accumulation 2 (the Trainer's, or a
    GradientAccumulationScheduler's) and its short windows, sweeps the same LRs and reads
    the same per-step losses as lr_range_test in a plain loop: the same suggestion. The
    LR is high enough for the sweep to diverge and stop early."""
    data, lr, steps = _data(), 50.0, 40
    expected = _plain_loop_range_test(data, lr, accumulate, steps)
    model = _Swept(data, lr=lr)
    if scheduled:
        trainer = _trainer(tmp_path, callbacks=[GradientAccumulationScheduler({0: accumulate})])
    else:
        trainer = _trainer(tmp_path, accumulate_grad_batches=accumulate)
    given = trainer.accumulate_grad_batches
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH)

    result = range_test(trainer, model, loader, steps=steps, update_attr=False)

    assert trainer.accumulate_grad_batches == given
    assert expected.stopped and len(expected.losses) < steps  # the stop was exercised
    assert result.base_lrs == pytest.approx([lr, lr * BIAS_RATIO])
    assert result.multipliers == pytest.approx(sweep_multipliers(steps))
    assert result.losses == pytest.approx(expected.losses, rel=1e-6)
    assert result.stopped and result.suggested_multiplier == expected.suggested_multiplier
    assert result.suggested_lrs == pytest.approx(expected.suggested_lrs)
    # every group at its own LR times the step's multiple, the sweep's steps only
    swept = result.multipliers[:len(result.losses)]
    assert len(model.step_lrs) == len(swept)
    for applied, m in zip(model.step_lrs, swept):
        assert applied == pytest.approx([lr * m, lr * BIAS_RATIO * m])
    assert model.lr == lr  # update_attr=False


class _WarmedUp(_Swept):
    """A scheduler that sets the LRs to a hundredth at construction (its ``initial_lr``
    keeps the LR given) and would move them at every step."""

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = super().configure_optimizers()
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}


def test_the_sweep_starts_from_the_lr_the_optimizer_was_given(tmp_path: Path) -> None:
    """Each group's ``initial_lr``, not what the scheduler made of it; and the sweep's LRs
    are those applied, whatever the scheduler would have done."""
    model = _WarmedUp(_data(), lr=0.05)
    result = range_test(_trainer(tmp_path), model, steps=8)
    assert result.base_lrs == pytest.approx([0.05, 0.05 * BIAS_RATIO])
    for applied, m in zip(model.step_lrs, result.multipliers, strict=True):
        assert applied == pytest.approx([0.05 * m, 0.05 * BIAS_RATIO * m])


def test_an_lr_of_zero_is_refused_before_the_sweep(tmp_path: Path) -> None:
    """With update_attr=False the attribute is not checked; the optimizer's LR of 0 (and
    no initial_lr) is, before any step: there is nothing to sweep."""
    model = _Swept(_data(), lr=0.0)
    trainer = _trainer(tmp_path)
    weights = _weights(model)
    with pytest.raises(ValueError, match="it needs a positive one"):
        range_test(trainer, model, steps=30, update_attr=False)
    assert model.step_lrs == [] and trainer.global_step == 0
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


class _ManualOptimization(_Swept):
    def __init__(self, data: Any) -> None:
        super().__init__(data, lr=0.05)
        self.automatic_optimization = False


class _NoOptimizer(_Swept):
    def configure_optimizers(self) -> None:
        return None


class _NoLRAttribute(_Classifier):
    pass


class _SkipsTheThirdBatch(_Swept):
    """training_step returns None (skips the batch) for the third batch of each epoch."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        return None if batch_idx == 2 else super().training_step(batch, batch_idx)


def _tunable(data: Any) -> _Swept:
    return _Swept(data, lr=0.05)


@pytest.mark.parametrize(("build", "kwargs", "error", "match"), [
    pytest.param(_ManualOptimization, {}, MisconfigurationException,
                 "needs automatic optimization", id="manual-optimization"),
    pytest.param(_tunable, {"strategy": "ddp_spawn", "devices": 2}, MisconfigurationException,
                 "processes it launches itself", id="ddp-spawn"),
    pytest.param(_tunable, {"fast_dev_run": True}, MisconfigurationException,
                 "under fast_dev_run", id="fast-dev-run"),
    pytest.param(_tunable, {"callbacks": [LearningRateFinder()]}, MisconfigurationException,
                 "has a LearningRateFinder callback", id="lr-finder-callback"),
    pytest.param(_NoLRAttribute, {}, AttributeError, "or update_attr=False",
                 id="no-lr-attribute"),
    pytest.param(lambda data: _Swept(data, lr=0.0), {}, ValueError, "not a positive LR",
                 id="zero-lr-attribute"),
    pytest.param(lambda data: _NoOptimizer(data, lr=0.05), {}, MisconfigurationException,
                 "returned no optimizer", id="no-optimizer"),
    pytest.param(_tunable, {"limit_train_batches": 0}, RuntimeError,
                 "ended the sweep after 0 of its 30", id="no-training-batches"),
    pytest.param(lambda data: _SkipsTheThirdBatch(data, lr=0.05), {}, RuntimeError,
                 "no loss for any micro-batch of the sweep's step 2", id="a-step-without-loss"),
])
def test_what_the_sweep_cannot_run_is_refused_and_changes_nothing(
        tmp_path: Path, build: Any, kwargs: dict, error: type, match: str) -> None:
    model = build(_data())
    trainer = _trainer(tmp_path, **kwargs)
    weights, callbacks = _weights(model), list(trainer.callbacks)
    with pytest.raises(error, match=match):
        range_test(trainer, model, steps=30)
    assert trainer.callbacks == callbacks and trainer.global_step == 0
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


@pytest.mark.parametrize(("kwargs", "match"), [
    pytest.param({"steps": 1}, "steps must be an int >= 2", id="steps"),
    pytest.param({"start": 1.0, "end": 1.0}, "0 < start < end", id="span"),
    pytest.param({"stop": 1.0}, "stop must be above 1", id="stop"),
])
def test_arguments_are_checked_before_the_fit(tmp_path: Path, kwargs: dict, match: str) -> None:
    model = _Swept(_data(), lr=0.05)
    with pytest.raises(ValueError, match=match):
        range_test(_trainer(tmp_path), model, **kwargs)
    assert model.step_lrs == []


def test_a_grad_scalers_scale_is_put_back_and_the_losses_read_unscaled(tmp_path: Path) -> None:
    """fp16 AMP with a GradScaler at a scale that overflows: the sweep's skipped steps
    shrink it, and the test puts it back; the losses it reads are training_step's."""
    from lightning.pytorch.plugins import MixedPrecision

    scales: list[float] = []  # the scaler's at each of the sweep's steps

    class _Scales(_Swept):
        def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
            scales.append(self.trainer.precision_plugin.scaler.get_scale())

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    model = _Scales(_data(), lr=0.05)
    trainer = _trainer(tmp_path, plugins=[MixedPrecision("16-mixed", "cpu", scaler)])

    result = range_test(trainer, model, steps=30, update_attr=False)

    assert min(scales) < 2.0**127  # the sweep's overflows did shrink it
    assert result.losses[:2] == pytest.approx(model.micro[:2], rel=1e-6)  # ~2.3: unscaled
    assert trainer.precision_plugin.scaler is scaler
    assert scaler.get_scale() == 2.0**127
    model.micro.clear()
    trainer.fit(model)
    assert len(model.micro) == 6  # the fit after it trains as usual


class _Digits(pl.LightningDataModule):
    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.data, batch_size=BATCH)


def test_range_test_then_greedylr_end_to_end(tmp_path: Path) -> None:
    """The recipe for an LR nobody tuned, with a datamodule: the test (its 30 steps run 10
    epochs, on a Trainer of max_epochs=2), then a fit whose GreedyLR starts at the
    suggestion and is fed only the fit's own steps."""
    data = _data()
    model = _TunableLR(data)  # SGD at model.lr with GreedyLR
    trainer = _trainer(tmp_path, max_steps=-1, max_epochs=2, accumulate_grad_batches=2,
                       callbacks=[GreedyLRCallback()])
    datamodule = _Digits(data)

    result = range_test(trainer, model, datamodule=datamodule, steps=30)
    model.micro.clear()
    trainer.fit(model, datamodule=datamodule)

    sched = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(sched, GreedyLR)
    assert sched.base_lrs == [pytest.approx(0.05 * result.suggested_multiplier)]
    assert sched.config.total_steps == 6 and sched.state.step == 6  # not the sweep's steps
    m = model.micro
    windows = [m[0:2], m[2:4], m[4:5], m[5:7], m[7:9], m[9:10]]
    assert list(sched.trace.losses) == pytest.approx([sum(w) / len(w) for w in windows],
                                                     rel=1e-6)


def _ddp_worker(rank: int, out: str, port: int) -> None:
    """One of two processes that torchrun would start (``LOCAL_RANK`` set: Lightning's
    ``strategy="ddp"`` launches nothing), each with weights of its own."""
    os.environ.update(loopback_rank_environment(rank, port))
    torch.set_num_threads(1)  # two processes on two cores
    model = _Swept(_data(), lr=0.05)
    if rank == 1:  # weights of its own, which DDP replaces with rank 0's in the fit
        with torch.no_grad():
            model.net.weight.add_(0.01)
    trainer = _trainer(Path(out), strategy="ddp", devices=2, accumulate_grad_batches=2)
    before = {name: tensor.tolist() for name, tensor in _weights(model).items()}

    result = range_test(trainer, model, steps=6)

    swept_micro, swept_lrs = list(model.micro), list(model.step_lrs)
    after_test = {name: tensor.tolist() for name, tensor in _weights(model).items()}
    model.step_lrs.clear()
    trainer.fit(model)
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "world": trainer.world_size, "losses": result.losses, "micro": swept_micro,
        "swept_lrs": swept_lrs, "suggested": result.suggested_multiplier, "lr": model.lr,
        "before": before, "after_test": after_test, "fit_lrs": model.step_lrs}))
    gc.collect()
    torch.distributed.destroy_process_group()


@pytest.mark.slow  # two processes each import Lightning
@pytest.mark.timeout(240)
def test_every_ddp_rank_reads_the_mean_of_the_ranks_and_takes_the_same_suggestion(
        tmp_path: Path) -> None:
    """``strategy="ddp"`` in two gloo processes, accumulation 2, each rank on its half of
    the data (Lightning's distributed sampler): every step's loss is the mean over the
    ranks of their micro-batches' mean, the same on both; so is the suggestion, and the
    fit after it starts there on both ranks, from the same weights."""
    spawn_ranks(_ddp_worker, (str(tmp_path), free_loopback_port()), timeout=200)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["world"] == r1["world"] == 2
    assert r0["micro"] != r1["micro"], "both ranks swept the same data: nothing to average"
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == 6
    # each rank's 40 rows: batches of 16, 16 and 8, so windows of 2 and 1 micro-batches
    windows = [(0, 2), (2, 3), (3, 5), (5, 6), (6, 8), (8, 9)]
    for r in (r0, r1):
        assert len(r["micro"]) == 9
    means = [[sum(r["micro"][a:b]) / (b - a) for a, b in windows] for r in (r0, r1)]
    assert r0["losses"] == pytest.approx([(a + b) / 2 for a, b in zip(*means)], rel=1e-6)
    assert r0["swept_lrs"] == r1["swept_lrs"]
    assert r0["suggested"] == r1["suggested"] and r0["lr"] == r1["lr"]
    assert r0["lr"] == pytest.approx(0.05 * r0["suggested"])
    # the weights put back are the first rank's from before the test (the checkpoint's,
    # which DDP had also given both ranks for the sweep)
    assert r0["before"] != r1["before"]
    assert r0["after_test"] == r1["after_test"] == r0["before"]
    assert r0["fit_lrs"][0] == r1["fit_lrs"][0] == pytest.approx([r0["lr"], r0["lr"] * BIAS_RATIO])
