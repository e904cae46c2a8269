"""An LR range test: where to start GreedyLR when nobody has tuned the LR.

GreedyLR corrects an LR by a factor of a few over a run; it cannot tell, from the loss
alone, a tenth of a good LR from the good LR itself (early on, the loss falls quickly at
both). A range test measures that before the run (Smith 2017, arXiv 1506.01186; what
Lightning's ``Tuner.lr_find`` and fastai's ``lr_find`` do): a short sweep trains while
the LR grows exponentially, and the LR a tenth of the one where the smoothed loss was
lowest (``valley/10``, fastai's ``minimum`` suggestion) is where the run starts. The
reading starts at step 10 of the sweep (counting from 0; :data:`SKIP`: Lightning's
suggestion skips ten steps, fastai's the first tenth), where the smoothed loss averages
enough losses that one lucky batch cannot make the valley, and the sweep is cut on a
rise measured against the spread of the losses, so that a negative or shifted loss reads
as the same loss (:meth:`RangeTest.read`). The defaults study measured the earlier
reading (the minimum from step 0, a cut at four times the best), which differs from this
one where the valley fell in the first ten steps (a suggestion of at most 3.5e-5 times
the LR given) or where the loss fell again past that cut; its stored sweeps were not
read again. It measured the test from every point of fourteen LR grids (0.1x-10x of each
workload's tuned LR; rounds 22 and 23, ``results/defaults/DECISION.md``): GreedyLR
started from the suggestion ended within 2% of the best-tuned cosine at 37% of the
points (median ratio 1.05), against 29% (1.11) for GreedyLR at the point's LR and 29%
(1.07) for cosine after the same test. At an LR that was already tuned the test costs 7%
(13% on the one split no choice had seen, where it moved every workload's tuned LR by a
factor of 2.5 to 10): run it when nobody tuned the LR, not otherwise::

    result = greedylr.lr_range_test(model, optimizer, train_step)   # 100 steps
    result.apply(optimizer)            # every group's LR times result.suggested_multiplier
    scheduler = greedylr.GreedyLR(optimizer, total_steps=...)      # build it after

``train_step()`` runs one training step of the user's own loop (forward, backward,
``optimizer.step()``, zeroing the gradients) on the next batch and returns its loss.
The sweep multiplies each param group's LR from ``start`` to ``end`` times its value
(relative to the LR the user would have used: its ``initial_lr`` where a scheduler built
before the test left one, as a warmup from 0 does, else its ``lr``; so the groups keep
their ratios), and afterwards puts back, into the same tensors, the model's parameters,
buffers, gradients and extra state, any other tensor the optimizer trains (a learnable
temperature outside the model) and its gradient, the optimizer's state and groups, the
random number generators (torch's, Python's ``random`` and NumPy's global one: a data
loader or collator that draws from them sees the draws it would have seen without the
test) and whatever ``also_restore`` holds (a ``GradScaler``): the run that follows is the
one it would have been at the suggested LR. The batches the sweep drew are the caller's to
account for (a fresh iterator, or not).

Every step reads its loss on the host (a range test is a pre-run tool, not the training
loop). Under data parallelism (an initialised process group of several processes) the
loss each step reads is the mean over the ranks (``sync_ranks``: one all-reduce of a
scalar), whether ``train_step`` returns its own rank's loss or the mean already: every
rank reads the same sweep, stops at the same step (so their collectives stay in step)
and takes the same suggestion.
"""

from __future__ import annotations

import copy
import logging
import math
import operator
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from greedylr.distributed import mean_across_ranks

__all__ = ["SKIP", "RangeTest", "lr_range_test", "set_lrs", "sweep_multipliers"]

logger = logging.getLogger("greedylr")


#: The steps at a sweep's start whose smoothed loss is not read (at most half the sweep):
#: the bias-corrected average holds too few losses there, and one lucky batch would make
#: the valley (and the suggestion a tenth of the sweep's start). Lightning's suggestion
#: skips 10 steps too (``skip_begin``), fastai's the first tenth of the sweep.
SKIP = 10


@dataclass(frozen=True)
class RangeTest:
    """A sweep's record and its reading.

    Attributes:
        base_lrs: each param group's LR before the sweep (its ``initial_lr`` where a
            scheduler left one), which the sweep multiplied.
        multipliers: the multiple of ``base_lrs`` each step of the sweep trained at.
        losses: each step's loss, as ``train_step`` returned it (fewer than
            ``multipliers`` when the sweep stopped early).
        smoothed: the losses' exponential moving average (``beta``, bias-corrected), up
            to and including the step where the reading cut the sweep, or the step
            before a non-finite loss.
        stopped: whether the reading cut the sweep there (later losses cannot change
            the reading).
        skip: the steps at the start that the reading leaves out (:meth:`read`).
        mode: ``"min"``, the loss is to be lowered; ``"max"``, a value to raise.
    """

    base_lrs: tuple[float, ...]
    multipliers: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    stopped: bool
    skip: int = 0
    mode: Literal["min", "max"] = "min"

    @classmethod
    def read(cls, base_lrs: Sequence[float], multipliers: Sequence[float],
             losses: Sequence[float], *, beta: float = 0.98, stop: float = 4.0,
             mode: Literal["min", "max"] = "min", skip: int | None = None) -> RangeTest:
        """Smooth and cut a sweep's losses (``losses[k]``, the loss step ``k`` returned:
        measured before its update, which used ``multipliers[k]``, as Lightning and
        fastai pair them).

        The losses are smoothed from the first; the reading starts at step ``skip``
        (by default :data:`SKIP`, at most half the sweep), where the average holds
        enough losses: the valley is the best smoothed value from there, and the sweep
        is cut once the smoothed loss has risen above its best (since ``skip``) by more
        than ``stop - 1`` times the spread of the raw losses up to that best (their
        largest minus their smallest, from the first step), or at a non-finite loss. A
        smoothed value is an average of the raw losses, so it cannot rise by more than
        their spread as old losses fade from it (noise, or one lucky batch early on):
        with ``stop >= 2`` only losses beyond any seen before the valley cut the sweep.
        Only differences of losses enter the cut: the same curve shifted by a constant
        (a negative loss, a -ELBO, a Gaussian NLL) or scaled is read the same.
        ``mode="max"`` reads a value to raise (a reward) as the loss it is the negative
        of. A sweep cut (at a non-finite loss) before ``skip`` is read from all it has.

        Raises:
            ValueError: the first loss is not finite (nothing to read), or ``beta`` is
                not in [0, 1), ``stop`` is not above 1, ``mode`` is neither ``"min"`` nor
                ``"max"``, or ``skip`` is negative.
        """
        _check_reading(beta, stop)
        _check_mode(mode)
        if skip is None:
            skip = min(SKIP, len(multipliers) // 2)
        elif (skip := operator.index(skip)) < 0:
            raise ValueError(f"skip must be a non-negative int, got {skip!r}")
        smoothed: list[float] = []
        average, best, spread, stopped = 0.0, math.inf, 0.0, False
        lowest = highest = losses[0] if losses else 0.0
        for k, loss in enumerate(losses):
            if not math.isfinite(loss):
                stopped = True
                break
            lowest, highest = min(lowest, loss), max(highest, loss)
            average = beta * average + (1 - beta) * loss
            value = average / (1 - beta ** (k + 1))
            smoothed.append(value)
            if k < skip:
                continue
            reading = value if mode == "min" else -value  # lower is better
            if k > skip + 1 and reading - best > (stop - 1) * spread:
                stopped = True
                break
            if reading < best:
                best, spread = reading, highest - lowest
        if not smoothed:
            raise ValueError("the sweep's first loss is not finite: the LR range test has "
                             f"nothing to read (base LRs {list(base_lrs)})")
        return cls(tuple(base_lrs), tuple(multipliers), tuple(losses), tuple(smoothed),
                   stopped, skip, mode)

    @property
    def valley(self) -> int:
        """The step of the smoothed loss's best (its minimum; its maximum with
        ``mode="max"``), from step ``skip`` on (from the first where the sweep was cut
        before it)."""
        sign = 1.0 if self.mode == "min" else -1.0
        read_from = self.skip if len(self.smoothed) > self.skip else 0
        return min(range(read_from, len(self.smoothed)),
                   key=lambda k: sign * self.smoothed[k])

    @property
    def best_multiplier(self) -> float:
        """The multiple of ``base_lrs`` at the smoothed loss's best (:attr:`valley`)."""
        return self.multipliers[self.valley]

    @property
    def saturated(self) -> bool:
        """Whether the smoothed loss was still at its best at the sweep's last step: the
        suggestion is then the most the sweep can give (``end / 10`` times the LR
        given), wherever the best LR lies. Keep it unless the LR given may be more than
        about thirty times too small. In the defaults study (round 24), carrying 50 such
        sweeps on at the same rate put the suggestion at 2-20 times the best-tuned LR on
        most workloads, and GreedyLR from there ended a median 1.14 times the best-tuned
        cosine's held-out loss, against 1.03 from the capped suggestion; it helped mostly
        where the LR given was 30-100 times too small (6 of 9 such points)."""
        return not self.stopped and self.valley == len(self.smoothed) - 1

    @property
    def suggested_multiplier(self) -> float:
        """The suggestion, as a multiple of ``base_lrs``: a tenth of
        :attr:`best_multiplier` (``valley/10``)."""
        return self.best_multiplier / 10

    @property
    def suggested_lrs(self) -> list[float]:
        """Each param group's suggested LR."""
        return [lr * self.suggested_multiplier for lr in self.base_lrs]

    @property
    def suggested_lr(self) -> float:
        """The suggestion as one LR, to report: that of the first param group with a
        positive LR (a group frozen at LR 0 stays at 0), the group :attr:`swept_lrs`
        follows."""
        return self._shown_base_lr * self.suggested_multiplier

    @property
    def swept_lrs(self) -> list[float]:
        """The LR at each step of the sweep that ran, to plot ``losses`` against: the first
        param group's with a positive LR (a group frozen at LR 0 is swept at 0)."""
        return [self._shown_base_lr * m for m in self.multipliers[:len(self.losses)]]

    @property
    def _shown_base_lr(self) -> float:
        return self.base_lrs[_first_moving(self.base_lrs) or 0]

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        """Set each param group's LR to its suggestion. Build the scheduler after this: it
        takes its base LRs from there.

        A group without ``initial_lr`` gets its suggested LR as its ``lr`` (a tensor LR
        filled in place), as :func:`set_lrs` sets it. A group with one (a scheduler built
        before the test, which the sweep read the base LR from) gets its suggested LR as
        its ``initial_lr``, and its ``lr`` moves by the same factor, so that a warmup
        stays where it was (at 0, at 0): a torch scheduler built after this starts from
        ``initial_lr``. One built before keeps the base LRs it read when built: build it
        again. The optimizer's default LR, which a group added later starts from, moves
        by the same factor as the first moving group's (the first whose LR is not 0).

        Raises:
            ValueError: the optimizer has another number of param groups than the sweep.
        """
        if len(optimizer.param_groups) != len(self.base_lrs):
            raise ValueError(f"the range test swept {len(self.base_lrs)} param groups; this "
                             f"optimizer has {len(optimizer.param_groups)}")
        # relative to where the groups stand, so that applying twice changes nothing more
        bases = [float(group.get("initial_lr", group["lr"])) for group in optimizer.param_groups]
        for group, suggested in zip(optimizer.param_groups, self.suggested_lrs):
            lr = suggested
            if "initial_lr" in group:
                initial = float(group["initial_lr"])
                if initial > 0:
                    lr = float(group["lr"]) * suggested / initial
                _set(group, "initial_lr", suggested)
            _set(group, "lr", lr)
        _move_default_lr(optimizer, bases, self.suggested_lrs)


def set_lrs(optimizer: torch.optim.Optimizer, lrs: Sequence[float]) -> None:
    """Set each param group's LR (a tensor LR is filled in place, so a compiled step that
    captured it sees the change); a group's ``initial_lr``, where a scheduler left one,
    and the optimizer's default LR, which a group added later starts from (and
    transformers' polynomial schedule reads), move by the same factor as the group's
    and the first moving group's LR (the first whose LR is not 0)."""
    olds = [float(group["lr"]) for group in optimizer.param_groups]
    for group, old, lr in zip(optimizer.param_groups, olds, lrs, strict=True):
        if "initial_lr" in group:  # moved by the same factor as the group's LR
            _set(group, "initial_lr", lr if old == 0 else float(group["initial_lr"]) * lr / old)
        _set(group, "lr", lr)
    _move_default_lr(optimizer, olds, lrs)


def _first_moving(lrs: Sequence[float]) -> int | None:
    """The index of the first param group whose LR is not 0 (a group frozen at LR 0 moves
    by no factor); None if every one is 0."""
    return next((i for i, lr in enumerate(lrs) if lr != 0), None)


def _move_default_lr(optimizer: torch.optim.Optimizer, olds: Sequence[float],
                     news: Sequence[float]) -> None:
    """The optimizer's default LR moved by the factor of the first moving group (its LR
    from ``olds[i]`` to ``news[i]``: :func:`_first_moving`), unless no group moves, it has
    none, or it is a group's own tensor LR (which moved with the group)."""
    i = _first_moving(olds)
    default = optimizer.defaults.get("lr")
    if i is None or default is None or (isinstance(default, torch.Tensor) and any(
            default is group["lr"] for group in optimizer.param_groups)):
        return
    _set(optimizer.defaults, "lr", float(default) * news[i] / olds[i])


def sweep_multipliers(steps: int = 100, start: float = 1e-4, end: float = 1e2) -> list[float]:
    """The multiples of the LR given that a sweep of ``steps`` steps trains at, growing
    geometrically from ``start`` to ``end``."""
    return [start * (end / start) ** (k / (steps - 1)) for k in range(steps)]


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


def _check_reading(beta: float, stop: float) -> None:
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    if not stop > 1:
        raise ValueError(f"stop must be above 1, got {stop!r}")


def lr_range_test(
    model: nn.Module | Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    train_step: Callable[[], float | torch.Tensor],
    *,
    steps: int = 100,
    start: float = 1e-4,
    end: float = 1e2,
    beta: float = 0.98,
    stop: float = 4.0,
    mode: Literal["min", "max"] = "min",
    also_restore: Sequence[Any] = (),
    sync_ranks: bool = True,
) -> RangeTest:
    """Sweep the LR from ``start`` to ``end`` times each param group's, one
    ``train_step()`` per LR, stopping early once the smoothed loss has risen well above
    its best or a loss is not finite (:meth:`RangeTest.read`); then put back, in place,
    ``model``'s parameters, buffers and gradients, ``optimizer``'s state and param groups
    (its LRs as they were: :meth:`RangeTest.apply` sets the suggestion), any tensor the
    optimizer trains that ``model`` does not hold (and its gradient), the random number
    generators (torch's, Python's ``random`` and NumPy's global one) and the state of each
    of ``also_restore``.

    Args:
        model: the module (or modules) that ``train_step`` trains.
        optimizer: the optimizer ``train_step`` steps, at the LR you would otherwise use
            (a group's ``initial_lr`` where a scheduler built before the test set one).
        train_step: one step of your loop on the next batch; returns the loss (a float
            or a scalar tensor).
        steps: the sweep's length (100, as Lightning's and fastai's).
        start: the sweep's first multiple of each group's LR; the multiples grow
            geometrically. With ``end``, the defaults span six decades around the LR
            given, as round 22 measured.
        end: the sweep's last multiple.
        beta: the smoothing of :meth:`RangeTest.read`.
        stop: its cut: a rise of the smoothed loss above its best of more than
            ``stop - 1`` times the spread of the losses before it.
        mode: ``"min"`` for a loss; ``"max"`` where ``train_step`` returns a value to
            raise (a reward, an accuracy), as a ``GreedyLR(mode="max")`` is fed: the
            valley is then the smoothed value's peak, and the cut a fall from it.
        also_restore: other objects the step changes, with ``state_dict`` and
            ``load_state_dict`` (a ``torch.amp.GradScaler``, whose scale a sweep's
            overflows would shrink; an EMA of the weights; ...).
        sync_ranks: in an initialised process group of more than one process, read each
            step's loss averaged over the ranks
            (:func:`greedylr.distributed.mean_across_ranks`, one all-reduce of a scalar
            per step), so that every rank reads the same sweep, stops at the same step
            and takes the same suggestion, whether ``train_step`` returns its rank's loss
            or the mean already (averaging the mean again leaves it, up to rounding).
            Every rank must then run the test, as every collective; ``False`` where only
            some ranks do.

    Raises:
        ValueError: ``steps`` is below 2, ``start`` or ``end`` is not positive and finite
            or ``end <= start``, ``beta``, ``stop`` or ``mode`` is out of range, every
            group's LR is 0 (and no scheduler left an ``initial_lr``) or one is negative,
            or the first loss is not finite.
    """
    steps = _check_sweep(steps, start, end, beta, stop)  # before any step
    _check_mode(mode)
    base_lrs = _base_lrs(optimizer)
    modules = [model] if isinstance(model, nn.Module) else list(model)
    saved_modules = [_ModuleState(m) for m in modules]
    saved_loose = _LooseParameters(optimizer, modules)
    saved_optimizer = _OptimizerState(optimizer)
    saved_others = [_host_copy(other.state_dict()) for other in also_restore]
    saved_rng = _rng_states()
    multipliers = sweep_multipliers(steps, start, end)
    losses: list[float] = []
    try:
        for multiple in multipliers:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                _set(group, "lr", lr * multiple)
            loss = train_step()
            value = loss.detach() if isinstance(loss, torch.Tensor) else loss
            losses.append(float(mean_across_ranks(value) if sync_ranks else value))
            result = RangeTest.read(base_lrs, multipliers, losses, beta=beta, stop=stop,
                                    mode=mode)
            if result.stopped:
                break
    finally:
        for saved in saved_modules:
            saved.restore()
        saved_loose.restore()
        saved_optimizer.restore()
        for other, state in zip(also_restore, saved_others):
            other.load_state_dict(state)
        _set_rng_states(saved_rng)
    _warn_at_an_end_of_the_sweep(result)
    return result


def _check_sweep(steps: int, start: float, end: float, beta: float, stop: float) -> int:
    """A sweep's arguments checked (a ``ValueError`` says which is wrong); ``steps`` as an
    int."""
    try:
        steps = operator.index(steps)
    except TypeError:
        steps = 0
    if steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    if not (0 < start < end < math.inf):
        raise ValueError(f"need 0 < start < end < inf, got start={start!r}, end={end!r}")
    _check_reading(beta, stop)
    return steps


def _base_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """The LR each param group is swept relative to: its ``initial_lr`` where a scheduler
    built before the test left one (a warmup may have set ``lr`` to 0 for now), else its
    ``lr``.

    Raises:
        ValueError: a base LR is negative or not finite, or every group's is 0 (there is
            nothing to sweep).
    """
    lrs = [float(group.get("initial_lr", group["lr"])) for group in optimizer.param_groups]
    if not all(0 <= lr < math.inf for lr in lrs) or not any(lrs):
        raise ValueError(
            f"the LR range test multiplies each param group's LR, and these are {lrs} "
            "(their initial_lr where a scheduler set one, else their lr): it needs a "
            "positive one. Build the optimizer at the LR you would use; a warmup that "
            "starts at LR 0 is fine if its scheduler is a torch one (it leaves the LR in "
            "initial_lr), or build the scheduler after the test")
    return lrs


def _warn_at_an_end_of_the_sweep(result: RangeTest) -> None:
    """A warning where the valley was at one of the sweep's ends, so that the suggestion is
    the most, or the least, the sweep can give, or where a non-finite loss cut the sweep
    before its reading started."""
    worse, better = ("rose", "falling") if result.mode == "min" else ("fell", "rising")
    read_from = result.skip if len(result.smoothed) > result.skip else 0
    if result.saturated:
        logger.warning(
            "LR range test: the loss was still %s at the sweep's end (%g times the LR "
            "given); the suggestion, %g times it, is the most this sweep can give. Keep it "
            "unless the LR given may be more than ~30 times too small (then run the test "
            "again from it): sweeping further overshot the best LR in the defaults study",
            better, result.multipliers[-1], result.suggested_multiplier)
    elif read_from < result.skip:
        logger.warning(
            "LR range test: the loss of step %d (%g times the LR given) was not finite, "
            "before the reading starts (step %d); the suggestion, %g times the LR given, "
            "is read from the steps before it, whose average holds few losses",
            len(result.smoothed), result.multipliers[len(result.smoothed)], result.skip,
            result.suggested_multiplier)
    elif result.valley == read_from:
        logger.warning(
            "LR range test: the loss %s from the sweep's first step read (step %d, %g times "
            "the LR given); the suggestion, %g times it, is the least this sweep can give: "
            "the loss may be too noisy to read", worse, read_from,
            result.multipliers[read_from], result.suggested_multiplier)


def _set(holder: dict[str, Any], key: str, value: Any) -> None:
    """``holder[key] = value``, filling a tensor in place (a compiled or captured step
    keeps reading the same tensor)."""
    current = holder.get(key)
    if isinstance(current, torch.Tensor):
        if isinstance(value, torch.Tensor) and value.shape == current.shape:
            current.copy_(value)
        else:
            current.fill_(value)
    else:
        holder[key] = value


class _ModuleState:
    """A module's parameters, buffers (persistent or not), gradients and extra state,
    copied to host memory, to be copied back into the same tensors."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.tensors = {name: _host_copy(t) for name, t in _module_tensors(module)}
        self.grads = {name: None if p.grad is None else _host_copy(p.grad)
                      for name, p in module.named_parameters()}
        self.extra = {name: copy.deepcopy(m.get_extra_state()) for name, m in
                      module.named_modules()
                      if type(m).get_extra_state is not nn.Module.get_extra_state}

    @torch.no_grad()
    def restore(self) -> None:
        for name, tensor in _module_tensors(self.module):
            tensor.copy_(self.tensors[name])
        for name, p in self.module.named_parameters():
            _restore_grad(p, self.grads[name])
        modules = dict(self.module.named_modules())
        for name, state in self.extra.items():
            modules[name].set_extra_state(state)


def _module_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from module.named_parameters()
    yield from module.named_buffers()


class _LooseParameters:
    """The tensors the optimizer trains that none of the modules holds (a learnable
    temperature, a loss module's weights, a tensor handed to the optimizer alone), with
    their gradients, copied to host memory, to be copied back into the same tensors."""

    def __init__(self, optimizer: torch.optim.Optimizer, modules: Sequence[nn.Module]) -> None:
        held = {id(p) for m in modules for p in m.parameters()}
        self.params: list[torch.Tensor] = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in held:
                    held.add(id(p))  # once, however many groups list it
                    self.params.append(p)
        self.values = [_host_copy(p) for p in self.params]
        self.grads = [None if p.grad is None else _host_copy(p.grad) for p in self.params]

    @torch.no_grad()
    def restore(self) -> None:
        for p, value, grad in zip(self.params, self.values, self.grads, strict=True):
            p.copy_(value)
            _restore_grad(p, grad)


def _restore_grad(p: torch.Tensor, saved: torch.Tensor | None) -> None:
    """``p``'s gradient as saved: none, or the saved values (in the same tensor where it
    still has one)."""
    if saved is None:
        p.grad = None
    elif p.grad is None:
        p.grad = saved.to(p.device)
    else:
        p.grad.copy_(saved)


class _OptimizerState:
    """An optimizer's per-parameter state and its groups' settings, copied to host
    memory, to be put back into the same tensors (``load_state_dict`` would replace them,
    and cast them to the parameters' dtype)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.state = {p: {k: _host_copy(v) for k, v in s.items()}
                      for p, s in optimizer.state.items()}
        self.groups = [{k: _host_copy(v) for k, v in g.items() if k != "params"}
                       for g in optimizer.param_groups]

    def restore(self) -> None:
        for p in [p for p in self.optimizer.state if p not in self.state]:
            del self.optimizer.state[p]  # state the sweep created: none before it
        for p, saved in self.state.items():
            _restore_dict(self.optimizer.state[p], saved, device=p.device)
        for group, saved in zip(self.optimizer.param_groups, self.groups):
            _restore_dict(group, saved, device=None, keep=("params",))


@torch.no_grad()
def _restore_dict(live: dict[str, Any], saved: dict[str, Any], *, device: Any,
                  keep: tuple[str, ...] = ()) -> None:
    for key in [k for k in live if k not in saved and k not in keep]:
        del live[key]
    for key, value in saved.items():
        current = live.get(key)
        if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor) \
                and current.shape == value.shape:
            current.copy_(value)
        elif isinstance(value, torch.Tensor) and device is not None:
            live[key] = value.to(device)
        else:
            live[key] = value


def _host_copy(state: Any) -> Any:
    """A copy of a value (a tensor, or a nested state dict) with every tensor in host
    memory: the sweep must not hold a second copy of a large model on its device."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return type(state)((key, _host_copy(value)) for key, value in state.items())
    if isinstance(state, (list, tuple)):
        return type(state)(_host_copy(value) for value in state)
    return copy.deepcopy(state)


def _rng_states() -> dict[str, object]:
    """Python's and NumPy's global generators, torch's CPU generator and each accelerator's
    in use: every CUDA and XPU device's once that backend is initialized, and Apple's MPS
    generator where MPS is available."""
    states: dict[str, object] = {"python": random.getstate(), "numpy": np.random.get_state(),
                                 "cpu": torch.get_rng_state()}
    for name in ("cuda", "xpu"):  # initialized implies available, without probing a driver
        backend = getattr(torch, name, None)
        if backend is not None and backend.is_initialized():
            states[name] = backend.get_rng_state_all()
    if torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def _set_rng_states(states: dict[str, object]) -> None:
    random.setstate(states["python"])  # type: ignore[arg-type]
    np.random.set_state(states["numpy"])  # type: ignore[arg-type]
    torch.set_rng_state(states["cpu"])  # type: ignore[arg-type]
    for name in ("cuda", "xpu"):
        if name in states:
            getattr(torch, name).set_rng_state_all(states[name])
    if "mps" in states:
        torch.mps.set_rng_state(states["mps"])  # type: ignore[arg-type]
