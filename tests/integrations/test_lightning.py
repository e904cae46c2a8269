"""GreedyLR in a real Lightning ``ddp_spawn`` run: 2 CPU processes, accumulation 2.

No mocks: Lightning's own DDP-spawn strategy, its DistributedSampler (each rank trains
on a different half of scikit-learn's digits), ``self.log`` *without* ``sync_dist``, a
real checkpoint and a real resume. Every rank writes what it saw to a JSON file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.utilities.exceptions import MisconfigurationException  # noqa: E402

from greedylr import GreedyLR, cosine_mode  # noqa: E402
from greedylr.integrations.lightning import GreedyLRCallback  # noqa: E402
from spawning import free_loopback_port  # noqa: E402

ACCUMULATION = 2
EPOCHS = 2
STEPS_PER_EPOCH = 4  # 256 samples / 2 ranks / 16 per batch / 2 micro-batches
CONFIG = {"factor": 0.5, "patience": 1, "smoothing": "none"}


def _digits() -> torch.utils.data.TensorDataset:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return torch.utils.data.TensorDataset(
        torch.tensor(x[:256] / 16.0, dtype=torch.float32), torch.tensor(y[:256])
    )


class _Classifier(pl.LightningModule):
    def __init__(self, data: torch.utils.data.TensorDataset, plateau: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(64, 10)
        self.data = data
        self.plateau = plateau
        self.micro: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.micro.append(loss.item())
        self.log("train_loss", loss)  # rank-local: no sync_dist on purpose
        return loss

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.data, batch_size=16, shuffle=False)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        config: dict[str, Any] = {"scheduler": GreedyLR(optimizer, **CONFIG), "interval": "step"}
        if self.plateau:
            config.update(reduce_on_plateau=True, monitor="train_loss")
        return {"optimizer": optimizer, "lr_scheduler": config}


class _Recorder(pl.Callback):
    """Writes, per rank, the LR after every optimizer step and what the scheduler saw."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.rows: list[dict[str, Any]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % ACCUMULATION == 0:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.rows.append({"step": trainer.global_step, "lr": lr})

    def on_train_end(self, trainer, pl_module) -> None:
        sched = trainer.lr_scheduler_configs[0].scheduler
        result = {
            "rows": self.rows,
            "micro": pl_module.micro,
            "fed": [float(v) for v in sched.trace.losses],
            "decisions": sched.state.step,
            "logged_lr": float(trainer.callback_metrics["greedylr/lr"]),
            "last_lr": sched.get_last_lr()[0],
        }
        Path(self.out, f"rank{trainer.global_rank}.json").write_text(json.dumps(result))


def _fit(out: Path, data: Any, ckpt_dir: Path, ckpt_path: str | None = None) -> list[dict]:
    out.mkdir()
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(free_loopback_port())
    trainer = pl.Trainer(
        strategy="ddp_spawn",
        accelerator="cpu",
        devices=2,
        max_epochs=EPOCHS,
        accumulate_grad_batches=ACCUMULATION,
        callbacks=[
            GreedyLRCallback(),
            _Recorder(str(out)),
            ModelCheckpoint(dirpath=ckpt_dir, every_n_epochs=1, save_top_k=-1),
        ],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(_Classifier(data), ckpt_path=ckpt_path)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow  # two ddp_spawn fits: four Python processes start
@pytest.mark.timeout(480)
def test_ddp_spawn_ranks_agree_and_resume_is_exact(tmp_path: Path) -> None:
    data = _digits()
    ckpt_dir = tmp_path / "ckpt"
    full = _fit(tmp_path / "full", data, ckpt_dir)
    r0, r1 = full
    steps = EPOCHS * STEPS_PER_EPOCH

    assert [row["step"] for row in r0["rows"]] == list(range(1, steps + 1))
    assert r0["micro"] != r1["micro"], "both ranks saw the same data: nothing to agree on"
    for r in full:
        assert r["decisions"] == steps  # once per optimizer step, not per micro-batch
        assert r["logged_lr"] == pytest.approx(r["last_lr"])
    # The same LR on both ranks at every step, though each logged its loss unsynced.
    assert r0["rows"] == r1["rows"]
    assert r0["fed"] == r1["fed"]

    # Fed: the mean over the 2 micro-batches of each step, then over the 2 ranks.
    def per_step(r: dict) -> list[float]:
        m = r["micro"]
        return [(m[i] + m[i + 1]) / 2 for i in range(0, len(m), ACCUMULATION)]

    expected = [(a + b) / 2 for a, b in zip(per_step(r0), per_step(r1), strict=True)]
    assert r0["fed"] == pytest.approx(expected, rel=1e-6)
    lrs = [row["lr"] for row in r0["rows"]]
    assert len(set(lrs)) > 1, "the LR never moved: the test would prove nothing"

    # Resume from the end of the first epoch: the second epoch's LRs are identical.
    checkpoint = ckpt_dir / f"epoch=0-step={STEPS_PER_EPOCH}.ckpt"
    assert checkpoint.is_file(), sorted(p.name for p in ckpt_dir.iterdir())
    resumed = _fit(tmp_path / "resumed", data, tmp_path / "ckpt2", ckpt_path=str(checkpoint))
    assert resumed[0]["rows"] == resumed[1]["rows"]
    assert resumed[0]["rows"] == r0["rows"][STEPS_PER_EPOCH:]
    assert resumed[0]["fed"] == pytest.approx(r0["fed"][STEPS_PER_EPOCH:], rel=1e-6)


class _Validated(_Classifier):
    """Validates on each rank's half of the digits, logging ``val_loss`` rank-locally."""

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.data, batch_size=64, shuffle=False)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))  # no sync_dist


class _HeldOutRecorder(_Recorder):
    """Also writes each validation's rank-local ``val_loss`` and what GreedyLR made of it."""

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        sched = trainer.lr_scheduler_configs[0].scheduler
        self.rows.append({"step": trainer.global_step, "val_loss": float(
            trainer.callback_metrics["val_loss"]), "eval_best": sched.state.eval_best})


@pytest.mark.slow  # a ddp_spawn fit: two Python processes start
@pytest.mark.timeout(300)
def test_ddp_spawn_ranks_judge_the_mean_of_a_rank_local_val_loss(tmp_path: Path) -> None:
    # each rank's GreedyLR judged its own val_loss before: their LRs could part
    out = tmp_path / "out"
    out.mkdir()
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(free_loopback_port())
    trainer = pl.Trainer(
        strategy="ddp_spawn", accelerator="cpu", devices=2, max_epochs=EPOCHS,
        accumulate_grad_batches=ACCUMULATION, num_sanity_val_steps=0,
        callbacks=[GreedyLRCallback(), _HeldOutRecorder(str(out))], logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        log_every_n_steps=1)
    trainer.fit(_Validated(_digits()))
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in range(2))
    evals = [[row for row in r["rows"] if "val_loss" in row] for r in (r0, r1)]
    assert len(evals[0]) == len(evals[1]) == EPOCHS
    first0, first1 = evals[0][0], evals[1][0]
    assert first0["val_loss"] != first1["val_loss"], "the ranks validated on the same data"
    # the best so far is the ranks' mean, on both; the LRs stay the same on both
    assert first0["eval_best"] == first1["eval_best"]
    assert first0["eval_best"] == pytest.approx((first0["val_loss"] + first1["val_loss"]) / 2)
    assert r0["rows"] == [{**row, "val_loss": r0_row["val_loss"]} if "val_loss" in row else row
                          for row, r0_row in zip(r1["rows"], r0["rows"], strict=True)]


def test_callback_refuses_a_plateau_config(tmp_path: Path) -> None:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=1,
        callbacks=[GreedyLRCallback()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(MisconfigurationException, match="reduce_on_plateau"):
        trainer.fit(_Classifier(_digits(), plateau=True))


def test_fp16_scaler_and_a_short_last_window_feed_the_true_mean(tmp_path: Path) -> None:
    """One process: a real fp16 GradScaler (its scale divided out) and an epoch of 5
    batches with accumulation 2, whose last optimizer step sees a single micro-batch."""
    from lightning.pytorch.plugins import MixedPrecision

    data = torch.utils.data.Subset(_digits(), range(80))  # 5 batches of 16
    model = _Classifier(data)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        accumulate_grad_batches=ACCUMULATION,
        plugins=[
            MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=2.0**10))
        ],
        callbacks=[GreedyLRCallback()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model)
    sched = trainer.lr_scheduler_configs[0].scheduler
    m = model.micro
    assert len(m) == 5 and sched.state.step == 3
    expected = [(m[0] + m[1]) / 2, (m[2] + m[3]) / 2, m[4]]
    assert list(sched.trace.losses) == pytest.approx(expected, rel=1e-3)
    # The backward pass really was scaled: an unscaled feed would be ~1000x larger.
    assert trainer.precision_plugin.scaler.get_scale() >= 2.0**9


def test_a_fit_resumed_inside_an_accumulation_window_completes_it(tmp_path: Path) -> None:
    """A checkpoint saved between two micro-batches of a window keeps their loss: the
    resumed fit's first decision is on the mean of those and of the micro-batches it ran
    itself to end the window (Lightning keeps no gradient: the weights after that step
    differ). The batches alternate between two, so that the resumed fit, which replays
    its epoch from the first batch (a plain DataLoader), sees the batch the uninterrupted
    one saw: on Lightning 2.6 the window is the uninterrupted fit's; 2.2 runs the batch
    of the checkpoint again (its progress counts it unfinished), so its window holds it
    twice, as Lightning's own step does."""
    data = torch.utils.data.Subset(_digits(), [i % 32 for i in range(9 * 16)])  # 9 batches
    checkpoint = str(tmp_path / "mid-window.ckpt")

    class _SaveMidWindow(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if batch_idx == 7:  # two micro-batches (6, 7) of the window of 3 that ends at 8
                trainer.save_checkpoint(checkpoint)

    def fit(*callbacks: pl.Callback, ckpt_path: str | None = None
            ) -> tuple[GreedyLR, list[float]]:
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, max_epochs=1, accumulate_grad_batches=3,
            callbacks=[GreedyLRCallback(monitor=None), *callbacks], logger=False,
            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
            default_root_dir=tmp_path)
        model = _Classifier(data)
        trainer.fit(model, ckpt_path=ckpt_path)
        return trainer.lr_scheduler_configs[0].scheduler, model.micro

    full, full_micro = fit(_SaveMidWindow())
    resumed, resumed_micro = fit(ckpt_path=checkpoint)
    assert full.state.step == 3 and resumed.state.step == 3
    window = full_micro[6:8] + resumed_micro  # saved, then run after the resume
    assert list(resumed.trace.losses) == pytest.approx([sum(window) / len(window)], rel=1e-6)


class _SteppedEvery(_Classifier):
    def __init__(self, data: Any, interval: str, frequency: int) -> None:
        super().__init__(data)
        self.interval, self.frequency = interval, frequency

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        return {"optimizer": optimizer, "lr_scheduler": {
            "scheduler": GreedyLR(optimizer, anneal_fraction=0.5, **CONFIG),
            "interval": self.interval,
            "frequency": self.frequency}}


@pytest.mark.parametrize(("interval", "frequency", "decisions"),
                         [("epoch", 1, 4), ("step", 2, 8), ("epoch", 2, 2)])
def test_the_budget_counts_the_steps_lightning_gives_the_scheduler(
    tmp_path: Path, interval: str, frequency: int, decisions: int
) -> None:
    """4 epochs of 5 batches, accumulation 2: 3 optimizer steps an epoch (the last on one
    batch), 12 in all. An "epoch" scheduler is stepped at the end of every frequency-th
    epoch; a "step" one after the optimizer steps whose batch number is a multiple of
    frequency (batches 2 and 4 of 5 for 2). The budget is those steps, so the final
    cooldown (the last half of them here) runs."""
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=4, accumulate_grad_batches=ACCUMULATION,
        callbacks=[GreedyLRCallback(monitor=None)], logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    data = torch.utils.data.Subset(_digits(), range(80))
    trainer.fit(_SteppedEvery(data, interval, frequency))
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.global_step == 12
    assert sched.config.total_steps == sched.state.step == decisions
    assert "anneal" in [e.kind for e in sched.events]


class _Stream(torch.utils.data.IterableDataset):
    """A data set without a length: the batches of an epoch are known once it has ended."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __iter__(self) -> Any:
        return iter(self.data)


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "stream"])
def test_a_budget_given_in_max_steps_alone_counts_the_epochs_it_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sized: bool
) -> None:
    """max_steps without max_epochs (max_epochs=-1): Lightning's estimate is max_steps,
    read without loading the data; the callback loads it to count the epochs those steps
    make (4 steps of 2 batches: 2 epochs, 2 decisions). A stream has no length: no budget,
    and a warning saying so."""
    digits = torch.utils.data.Subset(_digits(), range(32))
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=4,
        callbacks=[GreedyLRCallback(monitor=None)], logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.fit(_SteppedEvery(digits if sized else _Stream(digits), "epoch", 1))
    sched = trainer.lr_scheduler_configs[0].scheduler
    warned = ("GreedyLR steps every 1 epoch(s), and the number of batches an epoch has is "
              "not known at fit start: it gets no budget" in caplog.text)
    assert (sched.config.total_steps, warned) == ((2, False) if sized else (None, True))


class _DeviceModeClassifier(_Classifier):
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=torch.tensor(0.05))
        sched = GreedyLR(optimizer, device_mode=True, **CONFIG)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_device_mode_callback_reads_nothing_back_per_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every way of reading a tensor on the host, patched from the first training batch on
    (construction may read the initial LRs): none may come from greedylr."""
    import sys

    import greedylr

    package = str(Path(greedylr.__file__).parent)
    reads: list[str] = []
    watching: list[bool] = []

    class _Watch(pl.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            watching.append(True)

    for name in ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__"):
        original = getattr(torch.Tensor, name)

        def patched(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1)
            if watching and caller.f_code.co_filename.startswith(package):
                reads.append(f"{_name} at {caller.f_code.co_filename}:{caller.f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, patched)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=12,
        callbacks=[GreedyLRCallback(), _Watch()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=50,
        default_root_dir=tmp_path,
    )
    trainer.fit(_DeviceModeClassifier(_digits()))
    monkeypatch.undo()
    assert watching and reads == [], sorted(set(reads))
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert sched.device_mode and sched.state.step == 12
    assert len({float(lr) for lr in sched.trace.lrs[0]}) > 1  # the LR moved
    logged = trainer.callback_metrics
    assert float(logged["greedylr/lr"]) == float(sched.get_last_lr()[0])
    assert float(logged["greedylr/smoothed_loss"]) == sched.state.smoothed


class _Validated(_Classifier):
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.data, batch_size=64)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        # no final cooldown: it ignores held-out values, and the last one falls in it
        sched = GreedyLR(optimizer, eval_patience=0, anneal_fraction=0.0, **CONFIG)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _fit_validated(model: pl.LightningModule, tmp_path: Path, *callbacks: pl.Callback,
                   greedy: GreedyLRCallback | None = None) -> tuple[pl.Trainer, list[float]]:
    """3 epochs of ``model`` with ``callbacks`` and GreedyLR's (``greedy``, by default
    ``GreedyLRCallback()``); the validation losses seen."""
    seen: list[float] = []

    class _Seen(pl.Callback):
        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                seen.append(float(trainer.callback_metrics["val_loss"]))

    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=3,
        callbacks=[*callbacks, greedy or GreedyLRCallback(), _Seen()],
        logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path,
    )
    trainer.fit(model)
    return trainer, seen


def test_budget_and_validation_metric_reach_the_scheduler(tmp_path: Path) -> None:
    trainer, seen = _fit_validated(_Validated(torch.utils.data.Subset(_digits(), range(64))),
                                   tmp_path)
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert sched.config.total_steps == trainer.estimated_stepping_batches == 12
    assert len(seen) == 3 and sched.state.eval_best == pytest.approx(min(seen))


def test_a_validate_after_the_fit_changes_nothing(tmp_path: Path) -> None:
    """``trainer.validate()`` once the fit is over, here on shuffled labels (a worse value
    would cut the LR and block increases): the run is over, nothing is decided."""
    data = _digits()
    model = _Validated(torch.utils.data.Subset(data, range(64)))
    trainer, _ = _fit_validated(model, tmp_path)
    sched = trainer.lr_scheduler_configs[0].scheduler
    before = sched.state_dict()
    shuffled = torch.utils.data.TensorDataset(data.tensors[0][:64],
                                              data.tensors[1][:64].roll(1))
    worse = trainer.validate(model, torch.utils.data.DataLoader(shuffled, batch_size=64),
                             verbose=False)
    assert worse[0]["val_loss"] > sched.state.eval_best
    assert sched.state_dict() == before


def test_a_monitor_never_logged_is_said_once(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer, seen = _fit_validated(_Validated(torch.utils.data.Subset(_digits(), range(64))),
                                       tmp_path, greedy=GreedyLRCallback(monitor="valid_loss"))
    assert len(seen) == 3 and trainer.lr_scheduler_configs[0].scheduler.state.eval_best is None
    said = [r.message for r in caplog.records if "observes no held-out value" in r.message]
    assert said == ["GreedyLRCallback observes no held-out value: 'valid_loss' was not logged "
                    "in validation (logged: ['greedylr/lr', 'greedylr/smoothed_loss', "
                    "'train_loss', 'val_loss']); pass monitor= (None for none)"]


class _EvalMode(_Classifier):
    def __init__(self, data: Any, eval_mode: str) -> None:
        super().__init__(data)
        self.eval_mode = eval_mode

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        sched = GreedyLR(optimizer, eval_mode=self.eval_mode, **CONFIG)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@pytest.mark.parametrize(("monitor", "eval_mode", "said"), [
    ("val_acc", "min", "GreedyLRCallback: GreedyLR takes a smaller 'val_acc' as better "
     "(eval_mode='min'), but its name reads as higher-is-better (a guess from its words); "
     "pass eval_mode='max' to GreedyLR if higher is better"),
    ("val_loss", "max", "GreedyLRCallback: GreedyLR takes a larger 'val_loss' as better "
     "(eval_mode='max'), but its name reads as lower-is-better (a guess from its words); "
     "pass eval_mode='min' to GreedyLR if lower is better"),
    ("val_acc", "max", None), ("val_loss", "min", None)])
def test_a_monitor_whose_name_reads_the_other_way_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monitor: str, eval_mode: str,
    said: str | None
) -> None:
    """An accuracy judged with the default eval_mode="min" would have each improvement
    cut the LR: the direction is read from the name, as transformers.attach reads it."""
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=1, callbacks=[GreedyLRCallback(monitor=monitor)],
        logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path)
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer.fit(_EvalMode(torch.utils.data.Subset(_digits(), range(16)), eval_mode))
    assert [r.message for r in caplog.records if r.name == "greedylr"] == ([said] if said else [])


class _LongWarmup(_Validated):
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        # a warmup of 11 of the run's 12 steps: it would run into the default cooldown
        sched = GreedyLR(optimizer, warmup=11, **CONFIG)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_a_warmup_the_budget_cannot_follow_with_a_cooldown_gets_none_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="greedylr"):
        trainer, _ = _fit_validated(
            _LongWarmup(torch.utils.data.Subset(_digits(), range(64))), tmp_path)
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert sched.config.total_steps is None and sched.state.step == 12
    assert "the warmup (11 steps) runs into the final cooldown of this 12-step run" in caplog.text


class _CosineMode(_Validated):
    def configure_optimizers(self) -> dict[str, Any]:
        # the docs' recipe: the budget is known in configure_optimizers
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        knobs = cosine_mode(self.trainer.estimated_stepping_batches)
        sched = GreedyLR(optimizer, **{**knobs, **CONFIG})
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_cosine_mode_takes_the_budget_in_configure_optimizers(tmp_path: Path) -> None:
    """The opt-in cosine mode needs its budget when it is built: Lightning's estimate is
    there in ``configure_optimizers``, and the LR applied follows the decay to 0."""
    trainer, _ = _fit_validated(_CosineMode(torch.utils.data.Subset(_digits(), range(64))),
                                tmp_path)
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert sched.config.total_steps == trainer.estimated_stepping_batches == 12
    assert sched.config.base_schedule == "cosine" and sched.config.eval_patience is None
    assert sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # the end of the decay
    assert max(sched.state.rule_lrs) > 0  # the rule's own LR, before the decay


def test_an_averaged_model_is_what_validation_feeds_the_scheduler(tmp_path: Path) -> None:
    """Lightning's own ``WeightAveraging`` with :func:`greedylr.power_ema`: validation
    runs on the average, so the held-out value GreedyLR receives is the average's."""
    from lightning.pytorch import callbacks

    if not hasattr(callbacks, "WeightAveraging"):
        pytest.skip(f"Lightning {pl.__version__} has no WeightAveraging (from 2.6)")
    WeightAveraging = callbacks.WeightAveraging

    from greedylr import power_ema

    data = torch.utils.data.Subset(_digits(), range(64))
    model = _Validated(data)
    trainer, seen = _fit_validated(model, tmp_path, WeightAveraging(avg_fn=power_ema()))
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert len(seen) == 3 and sched.state.eval_best == pytest.approx(min(seen))
    # after the fit the model holds the average: the last value fed was its loss
    x, y = data[:]
    with torch.no_grad():
        assert seen[-1] == pytest.approx(
            float(torch.nn.functional.cross_entropy(model.net(x), y)), rel=1e-5)
