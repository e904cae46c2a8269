"""What a trial trains: user code by reference, or a built-in workload by name.

A workload reference with a ``:`` is user code (``module:function`` or
``file.py:function``), imported where the trial runs. A bare name is a built-in workload,
looked up in the registry module named by :data:`BUILTIN_WORKLOADS`: a string, imported
only when a bare name is resolved, so that the harness never imports the evidence that
fills it (the evidence depends on the harness, not the other way round), and a worker
process that is handed only a trial spec can still find the workload.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from greedylr.studies.trial import Trial, TrialSpec

__all__ = [
    "BUILTIN_WORKLOADS",
    "BuiltinWorkload",
    "ResolvedWorkload",
    "builtin_workload",
    "canonical_reference",
    "make_specs",
    "ran_other_code",
    "resolve_workload",
    "same_file_moved",
    "scaled_lengths",
    "source_digest",
    "user_module",
]

BUILTIN_WORKLOADS = "greedylr.evidence.workloads"
"""The module that holds the built-in workloads; its ``get(name)`` returns a
:class:`BuiltinWorkload` or raises ``KeyError`` naming the known ones."""


class BuiltinWorkload(Protocol):
    """What the harness reads of a built-in workload (see :data:`BUILTIN_WORKLOADS`)."""

    @property
    def name(self) -> str: ...
    @property
    def train(self) -> Callable[[Any], None]: ...
    @property
    def optimizer(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def warmup(self) -> int: ...
    @property
    def eval_every(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def higher_is_better(self) -> bool: ...
    def lr_for(self, optimizer: str | None = None) -> float: ...


def builtin_workload(name: str) -> BuiltinWorkload:
    """The built-in workload called ``name``, from the :data:`BUILTIN_WORKLOADS` module.

    Raises:
        KeyError: there is none by that name.
    """
    registry: Any = importlib.import_module(BUILTIN_WORKLOADS)
    workload: BuiltinWorkload = registry.get(name)
    return workload


@dataclass(frozen=True)
class ResolvedWorkload:
    """What the runner needs of a workload, whether registered or user code.

    Args:
        name: the reference it was resolved from.
        train: the training function ``train(trial) -> None``.
        lr: the default initial LR for the trial's optimizer (``None``: 1e-3).
        metric: the held-out metric's name, if known.
        higher_is_better: its direction, if known.
    """

    name: str
    train: Callable[[Trial], None]
    lr: float | None = None
    metric: str | None = None
    higher_is_better: bool | None = None


def _is_file(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def user_module(ref: str) -> str | None:
    """The module a ``module:function`` reference names; ``None`` for a file's
    (``file.py:function``) or a registered workload's name.

    Examples:
        >>> user_module("my_pkg.train:train"), user_module("train.py:train")
        ('my_pkg.train', None)
    """
    target, _, _ = ref.rpartition(":")
    return target if target and not _is_file(target) else None


def canonical_reference(ref: str) -> str:
    """One spelling per file, so that a file named two ways (``./train.py:train``,
    ``train.py:train``, its absolute path, a path through a symbolic link, from another
    folder) is one workload with one set of trial keys: the file's real absolute path,
    which a Ray worker on the same file system finds too. Module references and
    registered names are returned as they are.

    Examples:
        >>> canonical_reference("/no/such/../folder/train.py:train")
        '/no/folder/train.py:train'
        >>> canonical_reference("my_pkg.train:train")
        'my_pkg.train:train'
    """
    target, _, attr = ref.rpartition(":")
    if not target or not _is_file(target):
        return ref
    return f"{os.path.realpath(os.path.expanduser(target))}:{attr}"


def source_digest(ref: str) -> str | None:
    """A digest of the file that defines user code ``ref`` (``file.py:function``, or
    ``module:function``'s module file), so that a stored trial can tell that the code
    changed since it ran; ``None`` for a registered workload, or a file that cannot be
    read. Only that file: a change in a file it imports is not seen."""
    target, _, _ = ref.rpartition(":")
    if not target:
        return None
    try:
        if _is_file(target):
            path = Path(target).expanduser()
        else:
            spec = importlib.util.find_spec(target)
            if spec is None or not spec.origin or not os.path.isfile(spec.origin):
                return None
            path = Path(spec.origin)
        return hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    except Exception:  # a package whose import fails: its trials say why, not this
        return None


def ran_other_code(result: dict[str, Any], now: str | None) -> bool:
    """Whether the stored ``result`` ran another version of its training function's file
    than the one whose :func:`source_digest` is ``now`` (False where either is unknown:
    a registered workload, or a result stored before digests were recorded)."""
    stored = result.get("source_digest")
    return now is not None and stored is not None and stored != now


def same_file_moved(old_ref: str, old_digest: str | None, ref: str, digest: str | None) -> bool:
    """Whether user code ``old_ref``, whose file had the :func:`source_digest`
    ``old_digest`` when a trial ran it, is ``ref`` (whose file's digest is ``digest`` now)
    moved elsewhere: a project folder moved or renamed, which changes every absolute path
    and so every trial key. It is where ``old_ref``'s file is gone, both name a file of the
    same name and the same function, and the two digests are known and equal (the same
    code). The runner then keeps the stored trials of ``old_ref`` as trials of ``ref``,
    and a report counts them as one workload.

    Examples:
        >>> same_file_moved("/gone/a/train.py:train", "d1", "/new/a/train.py:train", "d1")
        True
        >>> same_file_moved("/gone/a/train.py:train", "d1", "/new/a/train.py:train", "d2")
        False
    """
    if old_ref == ref or digest is None or old_digest != digest:
        return False
    old_target, _, old_function = old_ref.rpartition(":")
    target, _, function = ref.rpartition(":")
    if not (old_target and target and _is_file(old_target) and _is_file(target)):
        return False
    name = os.path.basename(target.replace("\\", "/"))
    return (old_function == function
            and os.path.basename(old_target.replace("\\", "/")) == name
            and not os.path.exists(old_target))


def _import_function(ref: str) -> Callable[..., Any]:
    """``module.sub:function`` or ``path/to/file.py:function`` -> the function."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise ValueError(f"expected MODULE:FUNCTION or FILE.py:FUNCTION, got {ref!r}")
    if _is_file(target):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        # a stable module name per path, so that two files called train.py do not clash
        name = f"_greedylr_user_{abs(hash(str(path))):x}_{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            # the file's own folder, so that it can import its neighbours
            sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    else:
        module = importlib.import_module(target)
    try:
        function = getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"{target} has no attribute {attr!r}") from None
    if not callable(function):
        raise TypeError(f"{ref} is not callable")
    return function


def resolve_workload(ref: str, optimizer: str | None = None) -> ResolvedWorkload:
    """A built-in workload by name, or user code as ``module:function`` / ``file.py:function``.

    User functions may carry the facts a registered workload has, as attributes:
    ``train.metric = "accuracy"``, ``train.higher_is_better = True``, ``train.lr = 1e-3``.

    Args:
        ref: the workload reference of a :class:`TrialSpec`.
        optimizer: the trial's optimizer, to pick the workload's LR for it.

    Raises:
        KeyError: no built-in workload by that name (and no ``:`` in it).
        ImportError, AttributeError, FileNotFoundError: the user function cannot be found.
    """
    if ":" in ref:
        train = _import_function(ref)
        direction = getattr(train, "higher_is_better", None)
        return ResolvedWorkload(
            name=ref,
            train=train,
            lr=getattr(train, "lr", None),
            metric=getattr(train, "metric", None),
            higher_is_better=None if direction is None else bool(direction),
        )
    w = builtin_workload(ref)
    return ResolvedWorkload(
        name=w.name,
        train=w.train,
        lr=w.lr_for(optimizer),
        metric=w.metric,
        higher_is_better=w.higher_is_better,
    )


def scaled_lengths(workload: BuiltinWorkload, steps: int) -> dict[str, int]:
    """A built-in workload's length set to ``steps``, its warmup and evaluation interval
    keeping their share of the run (an evaluation pace longer than the run would leave
    one evaluation)."""
    scale = steps / workload.steps
    every = workload.eval_every
    return {"steps": steps, "warmup": round(workload.warmup * scale),
            "eval_every": max(1, round(every * scale)) if every else 0}


def make_specs(
    study: str,
    workloads: Iterable[str],
    schedules: Iterable[str],
    seeds: Iterable[int],
    *,
    optimizer: str | None = None,
    steps: int | None = None,
    lr: float | None = None,
    warmup: int | None = None,
    eval_every: int | None = None,
    settings: dict[str, Any] | None = None,
) -> list[TrialSpec]:
    """The grid workloads x schedules x seeds, with each registered workload's defaults;
    a file is named by its real path (``canonical_reference``), however it was given.

    An argument left as ``None`` takes the workload's default (registered workloads)
    or the :class:`TrialSpec` default (user code). Every schedule of one workload gets
    the same optimizer, LR, warmup and length: only the schedule differs.
    """
    specs = []
    schedules, seeds = list(schedules), list(seeds)
    for ref in map(canonical_reference, workloads):
        defaults: dict[str, Any] = {}
        if ":" not in ref:
            w = builtin_workload(ref)
            defaults = {
                "optimizer": w.optimizer,
                "steps": w.steps,
                "warmup": w.warmup,
                "eval_every": w.eval_every,
            }
        chosen = {
            "optimizer": optimizer,
            "steps": steps,
            "lr": lr,
            "warmup": warmup,
            "eval_every": eval_every,
        }
        fields = {**defaults, **{k: v for k, v in chosen.items() if v is not None}}
        for schedule in schedules:
            for seed in seeds:
                specs.append(
                    TrialSpec.make(
                        study=study,
                        workload=ref,
                        schedule=schedule,
                        seed=seed,
                        settings=settings,
                        **fields,
                    )
                )
    return specs


