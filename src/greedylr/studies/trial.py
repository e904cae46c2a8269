"""The trial protocol: what a training function receives, and what it reports.

Every workload of the studies, and every user function run by ``greedylr compare``,
is a plain function ``train(trial: Trial) -> None``. Adding the protocol to an
existing training loop takes three lines::

    def train(trial):
        model = ...
        optimizer = trial.optimizer(model.parameters())    # or your own optimizer
        scheduler = trial.scheduler(optimizer)              # 1: the schedule under test
        for step in range(trial.steps):
            loss = ...; loss.backward(); optimizer.step(); optimizer.zero_grad()
            trial.step(loss)                                # 2: steps it, records loss and LR
            if trial.should_eval():
                with trial.evaluating(model):
                    trial.report(accuracy=evaluate(model),  # 3: the held-out metric,
                                 feed=validation_loss(model))  # and a value to react to

``trial.optimizer`` is optional: it builds the optimizer the study asked for (and the
schedule-free optimizer when the schedule under test is ``schedule_free``). A function
that builds its own optimizer still works for every other schedule; the trial then
records that optimizer's LR or, when the study asks for one (``greedylr compare --lr``),
sets it: the first group's LR becomes the study's, the other groups move in proportion.

Settings (``TrialSpec.settings``) are routed by prefix: ``workload_*`` keys are the
training function's own options (read them from ``trial.options``), ``optimizer_*``
keys reach :meth:`Trial.optimizer` (``optimizer_weight_decay=0.1``), ``trial_*`` keys
are the protocol's (``trial_range_test=true``: :meth:`Trial.range_test`), and the other
keys are the schedule's (``factor=0.5`` for GreedyLR); a key the schedule does not take
fails the trial with a clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from greedylr.range_test import RangeTest

__all__ = ["Diverged", "Trial", "TrialSpec"]

logger = logging.getLogger(__name__)


class Diverged(FloatingPointError):
    """What :meth:`Trial.step` raises for a NaN or infinite training loss: the trial has
    diverged. The harness stores a trial as ``diverged`` for this exception alone (or one
    raised from it); any other error, a ``FloatingPointError`` of the training function's
    own code included (numpy's ``seterr(all="raise")`` in a metric), is ``failed``."""


@dataclass(frozen=True)
class TrialSpec:
    """The identity of one trial: workload x schedule x optimizer x seed x settings.

    Args:
        study: the study this trial belongs to (a folder under the results root).
        workload: the workload's registered name, or ``module:function`` for user code.
        schedule: the schedule's name in :mod:`greedylr.studies.schedules`.
        optimizer: the optimizer's name (``adamw``, ``adafactor``, ``adagrad``, ``sgd``;
            ``nadam``, ``rmsprop``, ``adamax``, ``radam``, ``adadelta``, ``asgd``, ``adam``,
            ``sparse_adam``, ``muon`` for the workloads that train with them).
        seed: the random seed; the trial seeds python, numpy and torch with it.
        steps: optimizer steps to train.
        lr: the initial (peak) learning rate; ``None`` means the workload's default.
        warmup: warmup steps, given to every schedule that takes one.
        eval_every: steps between held-out evaluations (0: only at the end).
        settings: schedule and workload options (e.g. ``{"factor": 0.5}``), JSON values.
    """

    study: str
    workload: str
    schedule: str
    optimizer: str = "adamw"
    seed: int = 0
    steps: int = 500
    lr: float | None = None
    warmup: int = 0
    eval_every: int = 0
    settings: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, *, settings: dict[str, Any] | None = None, **kwargs: Any) -> TrialSpec:
        """Build a spec from a settings dict (stored sorted, so that equal specs hash alike).

        Examples:
            >>> TrialSpec.make(study="s", workload="w", schedule="greedy",
            ...                settings={"factor": 0.5}).options
            {'factor': 0.5}
        """
        return cls(settings=tuple(sorted((settings or {}).items())), **kwargs)

    @property
    def options(self) -> dict[str, Any]:
        """The settings as a dict."""
        return dict(self.settings)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["settings"] = self.options
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        data = dict(data)
        return cls.make(settings=data.pop("settings", {}), **data)

    @property
    def key(self) -> str:
        """A stable, file-name-safe identifier of this trial."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        digest = hashlib.sha1(blob).hexdigest()[:10]
        return f"{self.workload_label}-{self.schedule}-{self.optimizer}-s{self.seed}-{digest}"

    @property
    def workload_label(self) -> str:
        """A short, file-name-safe name of the workload (``file.py:train`` -> ``file.train``)."""
        target, _, function = self.workload.rpartition(":")
        if not target:
            label = self.workload
        else:
            stem = target.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
            label = f"{stem}.{function}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


@dataclass
class TrialRecord:
    """What a trial recorded while it ran (columns, so that a result file stays small)."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: the class of the optimizer the schedule was built on (``torch.optim.sgd.SGD``):
    #: what really trained, whether the study's or the training function's own
    optimizer: str | None = None
    #: what :meth:`Trial.range_test` found: the first group's suggested LR, its multiple
    #: of the study's LR, and the sweep's steps
    range_test: dict[str, Any] | None = None


class Trial:
    """The handle a training function gets: builds the schedule under test, records.

    Args:
        spec: what to run.
        default_lr: the workload's default learning rate when ``spec.lr`` is None.
    """

    def __init__(self, spec: TrialSpec, *, default_lr: float = 1e-3) -> None:
        self.spec = spec
        self.lr = spec.lr if spec.lr is not None else default_lr
        self.record = TrialRecord()
        self._scheduler: Any = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._step = 0
        self._started = time.perf_counter()
        self._nonfinite: set[str] = set()  # metrics reported as NaN or infinite
        seed_everything(spec.seed)

    # -- what the training function asks for ------------------------------------

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def steps(self) -> int:
        return self.spec.steps

    @property
    def options(self) -> dict[str, Any]:
        return self.spec.options

    @property
    def current_step(self) -> int:
        return self._step

    def optimizer(self, params: Iterable[Any], **kwargs: Any) -> torch.optim.Optimizer:
        """The optimizer the study asked for, at ``self.lr`` (kwargs override defaults)."""
        from greedylr.studies.schedules import build_optimizer

        # settings ``optimizer_<arg>`` reach the optimizer (e.g. optimizer_weight_decay)
        options = {
            k.removeprefix("optimizer_"): v
            for k, v in self.options.items()
            if k.startswith("optimizer_")
        }
        self._optimizer = build_optimizer(
            self.spec.optimizer,
            params,
            lr=self.lr,
            schedule=self.spec.schedule,
            warmup=self.spec.warmup,
            **{**options, **kwargs},
        )
        return self._optimizer

    def range_test(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   train_step: Callable[[], torch.Tensor | float]) -> RangeTest | None:
        """With the setting ``trial_range_test=true`` (``greedylr compare --set
        trial_range_test=true``), an LR range test (:func:`greedylr.lr_range_test`) from
        the study's LR, whose suggestion the schedule then starts from; without it,
        nothing (``None``), so that a training function may always call it.

        Call it just before :meth:`scheduler`, with the model, the optimizer and one
        step of the training loop (forward, backward, ``optimizer.step()``, returning
        the loss). The sweep puts the model, the optimizer and the random generators back;
        the batches it drew are the loop's. The suggestion is recorded in the result
        (``range_test``); the result's ``lr`` stays the study's, the grid point the run
        started from.
        """
        if not self.options.get("trial_range_test"):
            return None
        if self._scheduler is not None:
            raise RuntimeError("call trial.range_test before trial.scheduler: the schedule "
                               "is built from the LR the range test suggests")
        from greedylr.range_test import lr_range_test

        self._take_lr(optimizer)
        result = lr_range_test(model, optimizer, train_step)
        result.apply(optimizer)
        self.record.range_test = {"lr": result.suggested_lr,
                                  "multiplier": result.suggested_multiplier,
                                  "steps": len(result.losses)}
        logger.info("range test: lr %g -> %g", self.lr, result.suggested_lr)
        return result

    def scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """The schedule under test, built for ``optimizer``; step it with :meth:`step`."""
        from greedylr.studies.schedules import build_schedule

        if self.options.get("trial_range_test") and self.record.range_test is None:
            raise RuntimeError(
                "the study asks for a range test (trial_range_test) but the training "
                "function did not call trial.range_test(model, optimizer, train_step) "
                "before trial.scheduler: the run would be labelled as one that had it")
        if self.record.range_test is None:  # else the range test placed the LR
            self._take_lr(optimizer)
        self._optimizer = optimizer
        kind = type(optimizer)
        self.record.optimizer = f"{kind.__module__}.{kind.__qualname__}"
        self._scheduler = build_schedule(
            self.spec.schedule,
            optimizer,
            total_steps=self.spec.steps,
            warmup=self.spec.warmup,
            **self.options,  # build_schedule ignores the PASSTHROUGH_PREFIXES' keys
        )
        return self._scheduler

    def _take_lr(self, optimizer: torch.optim.Optimizer) -> None:
        """Adopt ``optimizer``'s LR, or set the study's on it when it asked for one."""
        actual = float(optimizer.param_groups[0]["lr"])
        if optimizer is not self._optimizer and not math.isclose(actual, self.lr):
            if self.spec.lr is None:
                self.lr = actual  # the user's own optimizer decides the LR
            else:
                # the study asked for this LR (``greedylr compare --lr``): an LR grid must
                # not depend on the user building the optimizer with ``trial.lr``
                _rescale_lrs(optimizer, actual, self.lr)
                logger.info("the optimizer's lr %g set to the study's lr %g", actual, self.lr)
        self._optimizer = optimizer

    def step(self, loss: torch.Tensor | float) -> None:
        """Call once per optimizer step, after ``optimizer.step()``, with its loss.

        Raises:
            Diverged: the loss is NaN or infinite: the trial has diverged (the runner
                records it as ``diverged``, not as a crash). A ``FloatingPointError``,
                so that code which catches those still does.
            RuntimeError: :meth:`scheduler` was not called first.
        """
        from greedylr.studies.schedules import current_lr, step_schedule

        if self._scheduler is None or self._optimizer is None:
            raise RuntimeError("call trial.scheduler(optimizer) before trial.step(loss)")
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._step += 1
        self.record.losses.append(value)
        if not math.isfinite(value):
            # before the schedule sees it: a NaN would poison transformers' smoothing window
            self.record.lrs.append(current_lr(self._optimizer))
            raise Diverged(f"training loss is {value} at step {self._step}")
        step_schedule(self._scheduler, value)
        self.record.lrs.append(current_lr(self._optimizer))

    def should_eval(self) -> bool:
        """True at every ``eval_every``-th step and at the last step."""
        every = self.spec.eval_every
        return self._step == self.spec.steps or (every > 0 and self._step % every == 0)

    @contextlib.contextmanager
    def evaluating(self, model: torch.nn.Module) -> Iterator[None]:
        """Evaluation mode for the model (and for a schedule-free optimizer), then back."""
        opt = self._optimizer
        was_training = model.training
        model.eval()
        if opt is not None and hasattr(opt, "eval") and callable(opt.eval):
            opt.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            if opt is not None and hasattr(opt, "train") and callable(opt.train):
                opt.train()
            model.train(was_training)

    def report(self, *, feed: float | None = None, **metrics: float) -> None:
        """Record held-out metrics (e.g. ``accuracy=0.97, loss=0.1``) at the current step.

        Args:
            feed: a held-out value for the schedule under test (a loss: lower is
                better), given to its ``observe_eval`` if it has one (GreedyLR,
                ``reduce_on_plateau_eval``), and recorded as ``feed``; without it they run
                without their held-out rule, and the harness warns. Measure it on data
                the reported metrics do not use, or the schedule is tuned on what it is
                scored on.
            **metrics: the reported metrics. The study's held-out metric is the
                function's ``metric`` attribute if it has one (``train.metric =
                "accuracy"``), else the first name it reported other than ``feed``
                (``feed`` only where it reported nothing else). Its direction is the
                function's ``higher_is_better`` attribute if it has one; else
                ``feed`` is lower-is-better and another name's direction is guessed
                from the name (lower for a loss, an error, ``wer``, ``perplexity``,
                ``mse``...: :func:`~greedylr.studies.execution.direction_from_name`),
                which the harness warns of and the report says.
        """
        row: dict[str, Any] = {"step": self._step}
        for name, value in metrics.items():
            row[name] = float(value)
            if not math.isfinite(row[name]) and name not in self._nonfinite:
                self._nonfinite.add(name)  # said once per metric: it may stay NaN
                logger.warning("%s: the held-out %s is %s at step %d (recorded; a final "
                               "value that is not finite counts as a diverged run)",
                               self.spec.key, name, row[name], self._step)
        if feed is not None:
            row["feed"] = float(feed)
            observe = getattr(self._scheduler, "observe_eval", None)
            if observe is not None:
                observe(float(feed))
        self.record.metrics.append(row)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def schedule_object(self) -> Any:
        return self._scheduler


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rescale_lrs(optimizer: torch.optim.Optimizer, old: float, new: float) -> None:
    """Move the first group's LR from ``old`` to ``new``, every group in proportion
    (:func:`greedylr.range_test.set_lrs`: per-group ratios, tensor LRs filled in place,
    the optimizer's default LR moved too)."""
    from greedylr.range_test import set_lrs

    if old == 0:
        raise ValueError(
            f"cannot set the study's lr {new:g}: the optimizer's first group has lr 0, so "
            "the other groups' ratios to it are undefined; build the optimizer with "
            "lr=trial.lr, or put a trained group first"
        )
    set_lrs(optimizer, [new * float(group["lr"]) / old for group in optimizer.param_groups])
