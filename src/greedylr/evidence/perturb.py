"""Perturbations that act on training: they change the batch, the query point or the data.

The paper's robustness study (arXiv 2512.14527, section 4.4) added its "noise" as a
constant to the loss before ``backward()``: the gradient of a constant is zero and the
scheduler was given the clean ``loss.item()``, so nothing the optimizer or the scheduler
saw depended on the noise. Every perturbation here changes what training is computed on,
so both the update and the loss handed to the scheduler change (``tests/studies/
test_perturb.py`` checks exactly that, against the clean run of the same seed).

Families (``strength`` s in {0.1, 0.5, 1.0}):

* ``clean``: nothing.
* ``gaussian``: every training batch gets input noise of standard deviation ``s``
  (inputs are standardised), or, for an analytic function, the gradient and the loss
  are evaluated at a query point jittered by ``s * noise_scale``.
* ``periodic_spike``: a corrupted batch for ``spike_len`` consecutive steps every
  ``P = 50 + int(50 s)`` steps (the paper's period, for 200 steps; scaled with the run
  length), starting at step ``P``.
* ``random_spike``: a corrupted batch on about 2% of the steps.
* ``adversarial``: a corrupted batch on the step right after the observed loss reached a
  new best, i.e. it strikes exactly when training makes progress.
* ``shard_shift``: from ``shift_at`` (half-way) on, the data come from another
  distribution and stay there; held-out loss is measured on the new distribution.

A corrupted batch of strength s has a fraction s of its labels replaced by random ones
(for an analytic function: the query point is kicked by ``s * kick_scale``), so the
corrupted gradient pulls towards wrong answers and the observed loss spikes.

Randomness comes from per-seed streams (:class:`Streams`): every run with the same seed
draws the same batches, the same noise and the same spike times whatever its schedule,
so the schedules are compared on common random numbers, and the clean run of a seed is
the exact counterfactual of its perturbed runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "FAMILIES",
    "STRENGTHS",
    "BatchPerturber",
    "Perturbation",
    "Streams",
    "conditions",
]

FAMILIES: tuple[str, ...] = (
    "clean",
    "gaussian",
    "periodic_spike",
    "random_spike",
    "adversarial",
    "shard_shift",
)
STRENGTHS: tuple[float, ...] = (0.1, 0.5, 1.0)

_CODES = {name: i for i, name in enumerate(FAMILIES)}


@dataclass(frozen=True)
class Perturbation:
    """One perturbation condition: a family and a strength.

    Examples:
        >>> Perturbation("periodic_spike", 0.5).period(200)
        75
        >>> Perturbation("clean").name
        'clean'
    """

    family: str
    strength: float = 0.0

    def __post_init__(self) -> None:
        if self.family not in _CODES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.family == "clean":
            if self.strength != 0.0:
                raise ValueError(f"clean takes strength 0, got {self.strength!r}")
        elif not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength!r}")

    @property
    def name(self) -> str:
        return "clean" if self.family == "clean" else f"{self.family}@{self.strength:g}"

    def period(self, steps: int = 200) -> int:
        """Steps between periodic spikes: the paper's ``50 + int(50 s)`` for its 200-step
        runs, scaled to runs of ``steps`` steps."""
        quarter = steps / 4
        return max(1, round(quarter + int(quarter * self.strength)))

    @classmethod
    def parse(cls, name: str) -> Perturbation:
        family, _, strength = name.partition("@")
        return cls(family, float(strength) if strength else 0.0)


def conditions(strengths: Sequence[float] = STRENGTHS) -> list[Perturbation]:
    """Clean plus every perturbed family at every strength (16 conditions by default)."""
    out = [Perturbation("clean")]
    out += [Perturbation(f, s) for f in FAMILIES[1:] for s in strengths]
    return out


@dataclass
class Streams:
    """The random draws of one or more seeds, stacked on a leading seed axis.

    Attributes:
        batch_idx: ``[S, T, B]`` training-example indices of every step (neural), or an
            empty tensor (analytic).
        noise: ``[S, T, *item]`` standard-normal draws for Gaussian input noise (or
            query jitter), one per batch element (or coordinate).
        kick: ``[S, T, *item]`` standard-normal draws for corrupted query points.
        rand_labels: ``[S, T, B]`` the random labels of a corrupted batch.
        label_u: ``[S, T, B]`` uniforms: element i is corrupted when ``u_i < s``.
        spike_u: ``[S, T]`` uniforms: a random spike at step t when ``u_t < spike_prob``.
    """

    batch_idx: torch.Tensor
    noise: torch.Tensor
    kick: torch.Tensor
    rand_labels: torch.Tensor
    label_u: torch.Tensor
    spike_u: torch.Tensor

    @classmethod
    def draw(
        cls,
        seeds: Sequence[int],
        *,
        steps: int,
        item_shape: Sequence[int],
        batch: int = 0,
        n_train: int = 0,
        n_classes: int = 0,
        salt: int = 0,
    ) -> Streams:
        """Draw the streams of every seed, each from its own generator.

        Args:
            seeds: the seeds, in the order of the leading axis.
            steps: optimizer steps T.
            item_shape: one example's shape (neural: ``(batch, *x_shape)`` is drawn per
                step), or the parameter vector's shape for an analytic function.
            batch: examples per step (0 for an analytic function).
            n_train: size of the training split.
            n_classes: number of labels.
            salt: mixed into the generator seed so that two workloads with the same
                seed do not share draws.
        """
        parts: list[list[torch.Tensor]] = [[] for _ in range(6)]
        for seed in seeds:
            g = torch.Generator().manual_seed(1_000_003 * int(seed) + int(salt))
            per_step = (steps, batch, *item_shape) if batch else (steps, *item_shape)
            if batch:
                idx = torch.randint(0, n_train, (steps, batch), generator=g)
                labels = torch.randint(0, n_classes, (steps, batch), generator=g)
                label_u = torch.rand(steps, batch, generator=g)
            else:
                idx = labels = torch.zeros(steps, 0, dtype=torch.long)
                label_u = torch.zeros(steps, 0)
            noise = torch.randn(per_step, generator=g)
            kick = torch.randn(per_step, generator=g)
            spike_u = torch.rand(steps, generator=g)
            for part, value in zip(parts, (idx, noise, kick, labels, label_u, spike_u)):
                part.append(value)
        stacked = [torch.stack(p) for p in parts]
        return cls(*stacked)


class BatchPerturber:
    """The perturbations of R runs, applied to their batches all at once.

    Args:
        perturbations: one condition per run.
        seed_index: ``[R]`` each run's row in ``streams``.
        streams: the per-seed random draws.
        steps: optimizer steps T.
        spike_prob: probability of a random spike per step (the paper: 2%).
        spike_len: consecutive corrupted steps of a periodic spike (the paper: 3).
        shift_at: the step from which a shard shift holds (default: half-way).
    """

    def __init__(
        self,
        perturbations: Sequence[Perturbation],
        seed_index: torch.Tensor,
        streams: Streams,
        *,
        steps: int,
        spike_prob: float = 0.02,
        spike_len: int = 3,
        shift_at: int | None = None,
    ) -> None:
        if len(perturbations) != len(seed_index):
            raise ValueError(
                f"{len(perturbations)} perturbations for {len(seed_index)} seed indices"
            )
        self.perturbations = list(perturbations)
        self.seed_index = seed_index.long()
        self.streams = streams
        self.steps = steps
        self.shift_at = steps // 2 if shift_at is None else shift_at
        code = torch.tensor([_CODES[p.family] for p in perturbations])
        self.strength = torch.tensor([p.strength for p in perturbations])
        self.is_gaussian = code == _CODES["gaussian"]
        self.is_adversarial = code == _CODES["adversarial"]
        self.is_shift = code == _CODES["shard_shift"]
        # The spike schedule of every run is known in advance: [R, T].
        t = torch.arange(steps)
        period = torch.tensor([p.period(steps) for p in perturbations])[:, None]
        periodic = (code == _CODES["periodic_spike"])[:, None] & (t >= period) & (
            t % period < spike_len
        )
        random = (code == _CODES["random_spike"])[:, None] & (
            streams.spike_u[self.seed_index] < spike_prob
        )
        self.scheduled = periodic | random

    def __len__(self) -> int:
        return len(self.perturbations)

    def corrupt_mask(self, step: int, last_loss: torch.Tensor, best_before: torch.Tensor) -> (
        torch.Tensor
    ):
        """Which runs get a corrupted batch at ``step``: ``[R]`` bool.

        Args:
            step: the step about to be taken (0-based).
            last_loss: ``[R]`` the loss observed at ``step - 1`` (anything at step 0).
            best_before: ``[R]`` the best loss observed before ``step - 1`` (``inf``
                at first), so that ``last_loss < best_before`` means "a new best".
        """
        adversarial = self.is_adversarial & (last_loss < best_before) if step > 0 else (
            torch.zeros(len(self), dtype=torch.bool)
        )
        return self.scheduled[:, step] | adversarial

    def shift_weight(self, step: int) -> torch.Tensor:
        """``[R]`` how far each run's data have moved to the new distribution at ``step``."""
        active = self.is_shift & (step >= self.shift_at)
        return torch.where(active, self.strength, torch.zeros_like(self.strength))

    def final_shift_weight(self) -> torch.Tensor:
        """``[R]`` the shift at the end of training: the distribution held-out loss uses."""
        return self.shift_weight(self.steps - 1)

    # -- neural workloads: batches of examples --------------------------------

    def batch_indices(self, step: int) -> torch.Tensor:
        """``[R, B]`` the training examples of every run at ``step``."""
        return self.streams.batch_idx[self.seed_index, step]

    def perturb_batch(
        self,
        step: int,
        x: torch.Tensor,
        y: torch.Tensor,
        corrupt: torch.Tensor,
        shift: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply every run's perturbation to its batch.

        Args:
            step: the current step.
            x: ``[R, B, *x_shape]`` the clean inputs.
            y: ``[R, B]`` the clean labels.
            corrupt: ``[R]`` from :meth:`corrupt_mask`.
            shift: the full shard shift of an input batch (e.g. a mirror image); the run
                sees ``x + w * (shift(x) - x)`` with ``w`` from :meth:`shift_weight`.

        Returns:
            The inputs and labels the runs train on.
        """
        seeds = self.seed_index
        extra = (1,) * (x.dim() - 1)
        if shift is not None:
            w = self.shift_weight(step)
            if bool(w.any()):
                x = x + w.view(-1, *extra) * (shift(x) - x)
        sigma = torch.where(self.is_gaussian, self.strength, torch.zeros_like(self.strength))
        if bool(sigma.any()):
            x = x + sigma.view(-1, *extra) * self.streams.noise[seeds, step].view_as(x)
        if bool(corrupt.any()):
            frac = torch.where(corrupt, self.strength, torch.zeros_like(self.strength))
            flip = self.streams.label_u[seeds, step] < frac[:, None]
            y = torch.where(flip, self.streams.rand_labels[seeds, step], y)
        return x, y

    # -- analytic workloads: the "data" is the query point --------------------

    def query_point(
        self,
        step: int,
        params: torch.Tensor,
        corrupt: torch.Tensor,
        *,
        noise_scale: float,
        kick_scale: float,
    ) -> torch.Tensor:
        """Where each run's loss and gradient are evaluated at ``step``: ``[R, d]``.

        A clean run is evaluated at its parameters; Gaussian noise jitters the point
        by ``s * noise_scale``; a corrupted step kicks it by ``s * kick_scale``.
        """
        seeds = self.seed_index
        s = self.strength[:, None]
        jitter = torch.where(self.is_gaussian[:, None], s * noise_scale, 0.0)
        kick = torch.where(corrupt[:, None], s * kick_scale, 0.0)
        return (
            params
            + jitter * self.streams.noise[seeds, step]
            + kick * self.streams.kick[seeds, step]
        )
