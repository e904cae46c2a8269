"""What the robustness study trains on: its runs, its data, and what one step computes.

:class:`FamilyTask` is shared by the batched engine and the one-run-at-a-time reference,
so that the two cannot differ in anything but batching.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from greedylr.evidence.perturb import BatchPerturber, Perturbation, Streams
from greedylr.evidence.robustness.functions import ANALYTIC, DIM, KICK_SCALE, NOISE_SCALE, SHIFT
from greedylr.evidence.robustness.nets import NEURAL, Params

__all__ = ["BATCH", "FAMILIES", "PROBE", "PROBE_EVERY", "FamilyTask", "RunSpec", "load_digits"]

BATCH = 8
"""Training examples per step of a neural run (small: the study must fit in 30 minutes
on 2 CPU cores shared with other jobs; 200 steps are then about one epoch of digits)."""

PROBE = 32
"""Fixed held-out examples whose loss is recorded every :data:`PROBE_EVERY` steps,
for the recovery metrics (a fixed set: its loss moves only when the weights do)."""

PROBE_EVERY = 4
"""Steps between two probe-loss records (and the last step)."""

FAMILIES: tuple[str, ...] = (*NEURAL, *ANALYTIC)
"""Every model family of the study: the neural ones, then the analytic functions."""


@dataclass(frozen=True)
class _Digits:
    """sklearn's digits as flat 8x8 images, standardised by the training part."""

    x_train: Tensor  # [N, 64], standardised
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def load_digits() -> _Digits:
    """sklearn's digits, standardised, split into training and held-out parts."""
    from greedylr.evidence.workloads.data import digits

    d = digits()
    # one scalar mean and std from the training part: Gaussian noise of std s is then
    # s data standard deviations, and the images keep their structure
    mean, std = d.x_train.mean(), d.x_train.std()
    return _Digits((d.x_train - mean) / std, d.y_train, (d.x_test - mean) / std, d.y_test)


def _mirror(x: Tensor) -> Tensor:
    """The shard shift's new distribution: the digit images mirrored left to right."""
    return x.reshape(*x.shape[:-1], 8, 8).flip(-1).reshape(x.shape)


@dataclass(frozen=True)
class RunSpec:
    """One run: schedule x perturbation x seed (the family is given by the batch)."""

    schedule: str
    perturbation: Perturbation
    seed: int


def _seeds_of(specs: Sequence[RunSpec]) -> tuple[list[int], Tensor]:
    seeds = sorted({s.seed for s in specs})
    where = {s: i for i, s in enumerate(seeds)}
    return seeds, torch.tensor([where[s.seed] for s in specs])


def _salt(family: str) -> int:
    return FAMILIES.index(family) + 1 if family in FAMILIES else 0


def _init_params(family: str, seeds: Sequence[int], seed_index: Tensor) -> Params:
    """Each run's initial weights: those of its seed, so every schedule and perturbation
    of a seed starts from the same point."""
    per_seed: list[Params] = []
    for seed in seeds:
        g = torch.Generator().manual_seed(7_919 * int(seed) + _salt(family))
        if family in NEURAL:
            per_seed.append(NEURAL[family]().init(g))
        else:
            half = ANALYTIC[family][1]
            per_seed.append({"z": (torch.rand(DIM, generator=g) * 2 - 1) * half})
    return {k: torch.stack([p[k] for p in per_seed])[seed_index].clone() for k in per_seed[0]}


class FamilyTask:
    """What one training step of a family computes: the perturbed loss per run, the
    probe loss and the final held-out metrics."""

    def __init__(self, family: str, specs: Sequence[RunSpec], steps: int) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
        self.family = family
        self.neural = family in NEURAL
        seeds, self.seed_index = _seeds_of(specs)
        if self.neural:
            self.data = load_digits()
            self.net = NEURAL[family]()
            self.streams = Streams.draw(
                seeds, steps=steps, item_shape=(64,), batch=BATCH,
                n_train=len(self.data.y_train), n_classes=10, salt=_salt(family),
            )
            self.x_probe = self.data.x_test[:PROBE]
            self.y_probe = self.data.y_test[:PROBE]
        else:
            self.fn, _ = ANALYTIC[family]
            self.streams = Streams.draw(seeds, steps=steps, item_shape=(DIM,),
                                        salt=_salt(family))
        self.perturber = BatchPerturber(
            [s.perturbation for s in specs], self.seed_index, self.streams, steps=steps
        )
        self.seeds = seeds

    def init_params(self) -> Params:
        """Every run's initial weights (runs of one seed start from the same ones)."""
        return _init_params(self.family, self.seeds, self.seed_index)

    def _shifted(self, x: Tensor, weight: Tensor) -> Tensor:
        """Held-out or probe inputs ``[N, 64]`` seen by each run: ``[R, N, 64]``."""
        w = weight.view(-1, 1, 1)
        return x.unsqueeze(0) + w * (_mirror(x) - x).unsqueeze(0)

    def train_loss(self, step: int, params: Params, corrupt: Tensor) -> Tensor:
        """``[R]`` the loss each run trains on at ``step`` (with its perturbation)."""
        pert = self.perturber
        if self.neural:
            idx = pert.batch_indices(step)
            x, y = self.data.x_train[idx], self.data.y_train[idx]
            x, y = pert.perturb_batch(step, x, y, corrupt, shift=_mirror)
            logits = self.net.forward(params, x)
            return F.cross_entropy(
                logits.reshape(-1, 10), y.reshape(-1), reduction="none"
            ).view(y.shape).mean(1)
        z = params["z"]
        q = pert.query_point(step, z, corrupt, noise_scale=NOISE_SCALE,
                             kick_scale=KICK_SCALE)
        return self.fn(q - SHIFT * pert.shift_weight(step)[:, None])

    @torch.no_grad()
    def probe_loss(self, step: int, params: Params) -> Tensor:
        """``[R]`` the clean loss on the probe set (current distribution) after ``step``."""
        weight = self.perturber.shift_weight(step)
        if self.neural:
            x = self._shifted(self.x_probe, weight)
            logits = self.net.forward(params, x)
            y = self.y_probe.expand(x.shape[0], -1)
            return F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1),
                                   reduction="none").view(y.shape).mean(1)
        return self.fn(params["z"] - SHIFT * weight[:, None])

    @torch.no_grad()
    def final(self, params: Params, chunk: int = 128) -> tuple[Tensor, Tensor]:
        """``[R]`` held-out loss and accuracy on the final distribution."""
        weight = self.perturber.final_shift_weight()
        if not self.neural:
            loss = self.fn(params["z"] - SHIFT * weight[:, None])
            return loss, torch.full_like(loss, math.nan)
        losses, accs = [], []
        r = len(weight)
        for lo in range(0, r, chunk):  # bounded memory for the full held-out split
            part = {k: v[lo:lo + chunk] for k, v in params.items()}
            x = self._shifted(self.data.x_test, weight[lo:lo + chunk])
            logits = self.net.forward(part, x)
            y = self.data.y_test.expand(x.shape[0], -1)
            ce = F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1), reduction="none")
            losses.append(ce.view(y.shape).mean(1))
            accs.append((logits.argmax(-1) == y).float().mean(1))
        return torch.cat(losses), torch.cat(accs)
