"""The one supervised training loop the built-in workloads share.

Each workload supplies a model, a minibatch sampler, a loss and a held-out evaluation;
the loop wires them to the trial protocol exactly as a user's loop would: build the
optimizer and the schedule under test, step, report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from greedylr.averaging import averaged_model

if TYPE_CHECKING:
    from greedylr.evidence.workloads.data import ArrayDataset, LinkDataset

__all__ = [
    "batch_sampler", "classification_metrics", "fit_classifier", "fit_links", "fit_mse",
    "link_metrics", "nll_metrics", "psnr_metrics", "rmse_metrics", "run", "split_evaluator",
]

Batch = Any
Sampler = Callable[[torch.Generator], Batch]


def batch_sampler(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Sampler:
    """Epochs of shuffled minibatches of ``(x, y)``, driven by the trial's generator.

    Epoch-wise shuffling (rather than sampling with replacement) is what the paper's
    Hugging Face recipes do.
    """
    n = x.shape[0]
    batch_size = min(batch_size, n)
    state: dict[str, Any] = {"order": None, "pos": n}

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if state["pos"] + batch_size > n:
            state["order"] = torch.randperm(n, generator=generator)
            state["pos"] = 0
        idx = state["order"][state["pos"] : state["pos"] + batch_size]
        state["pos"] += batch_size
        return x[idx], y[idx]

    return sample


def classification_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Held-out accuracy and cross-entropy (as ``loss``, what a feed reports) of a
    classifier, in one forward pass."""
    logits = model(x)
    return {
        "accuracy": (logits.argmax(-1) == y).float().mean().item(),
        "loss": nn.functional.cross_entropy(logits, y).item(),
    }


def nll_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """A classifier's held-out negative log-likelihood (``nll``, also as ``loss``) and
    accuracy."""
    logits = model(x)
    nll = nn.functional.cross_entropy(logits, y).item()
    return {"nll": nll, "accuracy": (logits.argmax(-1) == y).float().mean().item(),
            "loss": nll}


def rmse_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """A regression's held-out ``rmse``, and its mean squared error as ``loss`` (what a
    feed reports)."""
    mse = nn.functional.mse_loss(model(x), y).item()
    return {"rmse": math.sqrt(mse), "loss": mse}


def _auc(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The probability that an edge outscores a non-edge (ties count half)."""
    pos, neg = logits[labels > 0.5], logits[labels <= 0.5]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).float() + 0.5 * (diff == 0).float()).mean().item()


def link_metrics(model: nn.Module, pairs: torch.Tensor, labels: torch.Tensor
                 ) -> dict[str, float]:
    """Held-out ``bce`` (binary cross-entropy of the pairs' logits; also as ``loss``, what
    a feed reports) and ``auc``."""
    logits = model(pairs)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, labels).item()
    return {"bce": bce, "auc": _auc(logits, labels), "loss": bce}


def psnr_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """An image regression's held-out ``psnr`` (dB, for intensities in [0, 1]), and its
    mean squared error as ``loss``."""
    mse = nn.functional.mse_loss(model(x), y).item()
    return {"psnr": -10.0 * math.log10(max(mse, 1e-12)), "loss": mse}


def split_evaluator(
    trial: Any, metrics: Callable[..., dict[str, float]], *held_out: torch.Tensor
) -> Callable[[nn.Module], dict[str, float]]:
    """``evaluate(model)``: ``metrics(model, *held_out)``, or, with the trial option
    ``workload_feed_split``, the same on alternate halves.

    Split, the even rows are scored (the reported metrics) and the odd rows' ``"loss"``
    is returned as ``"feed"``: the held-out value the schedule is given
    (``GreedyLR.observe_eval``), on data the reported metrics never see.
    """
    if not trial.options.get("workload_feed_split"):
        return lambda model: metrics(model, *held_out)
    scored = [t[0::2] for t in held_out]
    fed = [t[1::2] for t in held_out]

    def evaluate(model: nn.Module) -> dict[str, float]:
        out = metrics(model, *scored)
        out["feed"] = metrics(model, *fed)["loss"]
        return out

    return evaluate


def _averaged(trial: Any, model: nn.Module) -> Any:
    """The trial option ``workload_power_ema=gamma``: :func:`greedylr.averaged_model`,
    the model every evaluation scores."""
    gamma = trial.options.get("workload_power_ema")
    return None if gamma is None else averaged_model(model, gamma)


def run(
    trial: Any,
    model: nn.Module,
    sample: Sampler,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    evaluate: Callable[[nn.Module], dict[str, float]],
    *,
    clip_norm: float | None = 1.0,
    optimizer_kwargs: dict[str, Any] | None = None,
) -> None:
    """Train ``model`` for ``trial.steps`` steps under the trial's optimizer and schedule.

    Args:
        trial: the :class:`~greedylr.studies.trial.Trial`.
        model: a freshly initialised model (the trial has seeded torch already).
        sample: ``sample(generator) -> batch``, a training minibatch.
        loss_fn: ``loss_fn(model, batch) -> scalar loss``.
        evaluate: ``evaluate(model) -> {metric: value}`` on held-out data; called under
            ``trial.evaluating(model)`` (eval mode, no grad). A ``"feed"`` entry goes
            to ``trial.report(feed=...)`` (see :func:`split_evaluator`). With the trial
            option ``workload_power_ema``, it scores the average of the weights instead
            (:func:`greedylr.averaging.power_ema`; the feed too); the training loss stays
            the model's.
        clip_norm: gradient-norm clipping (1.0 is Hugging Face Trainer's default);
            ``None`` turns it off.
        optimizer_kwargs: extra optimizer arguments (e.g. momentum).
    """
    generator = torch.Generator().manual_seed(trial.seed)
    optimizer = trial.optimizer(model.parameters(), **(optimizer_kwargs or {}))

    def train_step() -> torch.Tensor:
        loss = loss_fn(model, sample(generator))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        return loss

    model.train()
    trial.range_test(model, optimizer, train_step)  # only with trial_range_test=true
    trial.scheduler(optimizer)
    averaged = _averaged(trial, model)
    scored = model if averaged is None else averaged.module
    for _ in range(trial.steps):
        loss = train_step()
        if averaged is not None:
            averaged.update_parameters(model)
        trial.step(loss)
        if trial.should_eval():
            with trial.evaluating(scored):
                metrics = evaluate(scored)
            feed = metrics.pop("feed", None)
            trial.report(**metrics, **({} if feed is None else {"feed": feed}))


def fit_mse(
    trial: Any,
    model: nn.Module,
    data: ArrayDataset,
    batch_size: int,
    metrics: Callable[..., dict[str, float]],
    **options: Any,
) -> None:
    """:func:`run` for a regression by mean squared error on an ``ArrayDataset``
    (``data.x_train -> data.y_train``), scored by ``metrics`` on its held-out part (split
    if the trial asks). ``options`` go to :func:`run` (``clip_norm``, ``optimizer_kwargs``)."""
    _fit(trial, model, data, batch_size, nn.functional.mse_loss, metrics, **options)


def fit_classifier(
    trial: Any,
    model: nn.Module,
    data: ArrayDataset,
    batch_size: int,
    metrics: Callable[..., dict[str, float]] = classification_metrics,
    **options: Any,
) -> None:
    """:func:`run` for a classifier by cross-entropy on an ``ArrayDataset``
    (``data.x_train -> data.y_train``, class indices), scored by ``metrics``
    (:func:`classification_metrics`, or :func:`nll_metrics` where the NLL is the metric)
    on its held-out part (split if the trial asks). ``options`` go to :func:`run`
    (``clip_norm``, ``optimizer_kwargs``)."""
    _fit(trial, model, data, batch_size, nn.functional.cross_entropy, metrics, **options)


def fit_links(trial: Any, model: nn.Module, data: LinkDataset, **options: Any) -> None:
    """:func:`run` for link prediction on a ``LinkDataset``: ``model(pairs)`` is a logit a
    ``(u, v)`` pair; each step scores every training edge against as many fresh random
    non-edges of the training graph (binary cross-entropy), and :func:`link_metrics`
    scores the held-out pairs (split if the trial asks). ``options`` go to :func:`run`
    (``clip_norm``, ``optimizer_kwargs``)."""
    edges, pool = data.edges, data.non_edges
    labels = torch.cat([torch.ones(len(edges)), torch.zeros(len(edges))])

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        negatives = pool[torch.randint(len(pool), (len(edges),), generator=generator)]
        return torch.cat([edges, negatives]), labels

    run(
        trial,
        model,
        sample,
        lambda m, b: nn.functional.binary_cross_entropy_with_logits(m(b[0]), b[1]),
        split_evaluator(trial, link_metrics, data.x_test, data.y_test),
        **options,
    )


def _fit(
    trial: Any,
    model: nn.Module,
    data: ArrayDataset,
    batch_size: int,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    metrics: Callable[..., dict[str, float]],
    **options: Any,
) -> None:
    run(
        trial,
        model,
        batch_sampler(data.x_train, data.y_train, batch_size),
        lambda m, b: loss(m(b[0]), b[1]),
        split_evaluator(trial, metrics, data.x_test, data.y_test),
        **options,
    )
