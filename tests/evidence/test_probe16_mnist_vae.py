"""The sixteenth probe split's variational autoencoder (``mnist_vae``): its data, its
held-out draws, and that its loss is the negative ELBO. An unseen split: nothing here
trains it under any schedule but cosine."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import distributions as D

from greedylr.evidence import workloads
from greedylr.evidence.workloads import mnist_vae
from greedylr.evidence.workloads.loop import split_evaluator
from greedylr.studies.execution import execute_trial
from greedylr.studies.trial import TrialSpec


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    return mnist_vae._images()


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.to(torch.uint8).numpy().tobytes() for row in x}


def _baseline(train: torch.Tensor, test: torch.Tensor) -> float:
    """Independent Bernoulli pixels at the training images' means (add-one smoothed):
    the held-out negative log-likelihood per image, in nats."""
    p = (train.sum(0) + 1) / (len(train) + 2)
    return -(test * p.log() + (1 - test) * (1 - p).log()).sum(1).mean().item()


def test_registered_facts() -> None:
    w = workloads.get("mnist_vae")
    assert (w.optimizer, w.metric, w.family, w.higher_is_better) == (
        "adagrad", "neg_elbo", "vae", False)
    assert w.eval_every * 10 == w.steps and w.quick_steps is not None
    assert w.quick_steps * 2 == w.steps
    assert [x.name for x in workloads.all_workloads() if x.family == "vae"] == ["mnist_vae"]


def test_images_are_binarized_once_the_same_way(images) -> None:
    train, test = images
    assert train.shape == (4000, 784) and test.shape == (1000, 784)
    assert train.dtype == test.dtype == torch.float32
    for x in (train, test):
        assert set(x.unique().tolist()) == {0.0, 1.0}
    assert 0.10 < train.mean().item() < 0.16  # about 13% of MNIST's pixels are ink
    torch.manual_seed(123)  # no global randomness goes into them
    again = mnist_vae._images()
    assert torch.equal(again[0], train) and torch.equal(again[1], test)


def test_no_held_out_image_is_a_training_image(images) -> None:
    train, test = images
    # MNIST 5k has no exact duplicate after binarization, across or within the parts:
    # nothing had to be dropped
    assert not _rows(train) & _rows(test)
    assert len(_rows(test)) == len(test)
    # nor nearly: every held-out image differs from every training image, and from every
    # other held-out image, in at least 3 pixels (the nearest pairs are two plain ones,
    # 5 apart; held out to training is no closer than training to training)
    def hamming(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = a.flatten(1).double(), b.flatten(1).double()
        return a @ (1 - b).T + (1 - a) @ b.T

    assert hamming(test, train).min() >= 3
    within = hamming(test, test) + 784 * torch.eye(len(test), dtype=torch.float64)
    assert within.min() >= 3


def test_the_two_halves_of_the_held_out_rows_share_no_image(images) -> None:
    _, test = images
    held, noise = mnist_vae._held_out_draws(test)
    draws = mnist_vae.DRAWS
    assert held.shape == (draws * len(test), 784) and noise.shape == (len(held), 20)
    # split exactly as the harness splits them
    seen: dict[str, tuple[torch.Tensor, ...]] = {}

    def metrics(model: Any, x: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        seen["fed" if "scored" in seen else "scored"] = (x, z)
        return {"loss": 0.0}

    trial = SimpleNamespace(options={"workload_feed_split": True})
    split_evaluator(trial, metrics, held, noise)(torch.nn.Identity())
    scored, fed = seen["scored"][0], seen["fed"][0]
    assert not _rows(scored) & _rows(fed)
    # every held-out image is in one half, ``draws`` times, at different noises
    assert _rows(scored) | _rows(fed) == _rows(test)
    assert len(_rows(scored)) == len(_rows(fed)) == len(test) // 2
    for x, z in (seen["scored"], seen["fed"]):
        assert len(x) == draws * len(test) // 2
        first = (x == x[0]).all(1)
        assert first.sum() == draws and z[first].unique(dim=0).shape[0] == draws


def test_held_out_noise_is_fixed_and_not_the_trials(images, monkeypatch) -> None:
    _, test = images
    held, noise = mnist_vae._held_out_draws(test)
    torch.manual_seed(7)
    again = mnist_vae._held_out_draws(test)
    assert torch.equal(held, again[0]) and torch.equal(noise, again[1])
    assert abs(noise.mean().item()) < 0.01 and abs(noise.std().item() - 1) < 0.01
    # what the training function evaluates on, for two training seeds (cosine only)
    recorded: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {0: [], 1: []}
    original = mnist_vae._metrics
    results = {}
    for seed in (0, 1):
        def metrics(model: Any, x: torch.Tensor, z: torch.Tensor, seed: int = seed
                    ) -> dict[str, float]:
            recorded[seed].append((x, z))
            return original(model, x, z)

        monkeypatch.setattr(mnist_vae, "_metrics", metrics)
        spec = TrialSpec.make(study="test", workload="mnist_vae", schedule="cosine",
                              optimizer="adagrad", seed=seed, steps=2, eval_every=1,
                              settings={"workload_feed_split": True})
        results[seed] = execute_trial(spec, threads=1)
        assert results[seed]["status"] == "ok", results[seed]["traceback"]
    assert len(recorded[0]) == len(recorded[1]) == 4  # scored and fed, twice
    for (x0, z0), (x1, z1) in zip(recorded[0], recorded[1], strict=True):
        assert torch.equal(x0, x1) and torch.equal(z0, z1)
    assert torch.equal(recorded[0][0][1], noise[0::2])
    assert torch.equal(recorded[0][1][1], noise[1::2])
    # while the training batches and their noise follow the seed
    assert results[0]["losses"] != results[1]["losses"]


def test_the_loss_is_the_negative_elbo_by_hand() -> None:
    torch.manual_seed(0)
    model = mnist_vae._VAE(pixels=5, latent=3, width=4)
    for p in model.parameters():  # the decoder's output layer starts at zero: not here
        torch.nn.init.normal_(p, std=0.7)
    x = torch.tensor([[1.0, 0, 1, 1, 0], [0, 0, 1, 0, 1]])
    eps = torch.randn(2, 3)
    with torch.no_grad():
        mu, logvar = model.encoder(x).chunk(2, -1)
        q = D.Normal(mu, (0.5 * logvar).exp())
        z = mu + q.stddev * eps
        log_px = D.Bernoulli(logits=model.decoder(z)).log_prob(x).sum(-1)
        kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum(-1)
        assert torch.allclose(mnist_vae._neg_elbo(model, x, eps), (kl - log_px).mean())
        # the analytic KL is the Monte Carlo one: -ELBO = E_q[log q(z|x) - log p(x, z)]
        many = torch.randn(100_000, 2, 3)
        zs = mu + q.stddev * many
        estimate = (q.log_prob(zs).sum(-1) - D.Normal(0.0, 1.0).log_prob(zs).sum(-1)
                    - D.Bernoulli(logits=model.decoder(zs)).log_prob(x).sum(-1)).mean()
        exact = mnist_vae._neg_elbo(model, x.repeat(len(many), 1), many.reshape(-1, 3))
        assert abs(estimate.item() - exact.item()) < 0.1  # sd 0.011; the KL is 5.7 nats


def test_untrained_scores_784_log_2_and_cosine_training_beats_independent_pixels(
        images) -> None:
    train, test = images
    held, noise = mnist_vae._held_out_draws(test)
    torch.manual_seed(0)
    with torch.no_grad():
        # logits of zero: every pixel a fair coin, plus the small KL of a random encoder
        start = mnist_vae._metrics(mnist_vae._VAE(), held, noise)["neg_elbo"]
    assert 0 < start - 784 * math.log(2) < 1
    baseline = _baseline(train, test)
    assert 200 < baseline < 215  # 206.6 nats
    spec = TrialSpec.make(study="test", workload="mnist_vae", schedule="cosine",
                          optimizer="adagrad", seed=0, steps=100, eval_every=100,
                          settings={"workload_feed_split": True})
    result = execute_trial(spec, threads=1)
    assert result["status"] == "ok", result["traceback"]
    assert result["optimizer_used"].rpartition(".")[2] == "Adagrad"
    assert abs(result["losses"][0] - start) < 5  # the first batch's loss, at the start
    final = result["metrics"][-1]
    assert final["loss"] == final["neg_elbo"] < baseline - 15
    assert final["feed"] < baseline - 15


def test_training_batches_carry_the_trials_own_noise(monkeypatch) -> None:
    captured: dict[str, Any] = {}

    def run(trial: Any, model: Any, sample: Any, *args: Any, **kwargs: Any) -> None:
        captured["sample"] = sample

    monkeypatch.setattr(mnist_vae, "run", run)
    streams = []
    for _ in range(2):  # a fresh sampler each time, the same seed: the same stream
        mnist_vae.train(SimpleNamespace(options={}))
        generator = torch.Generator().manual_seed(5)
        streams.append([captured["sample"](generator) for _ in range(3)])
    assert all(torch.equal(a, b) for f, g in zip(*streams, strict=True)
               for a, b in zip(f, g, strict=True))
    x, z = streams[0][0]
    assert x.shape == (100, 784) and z.shape == (100, 20)
    assert abs(z.mean().item()) < 0.1 and abs(z.std().item() - 1) < 0.1
    # another seed, other noise
    other = captured["sample"](torch.Generator().manual_seed(6))[1]
    assert not torch.equal(other, streams[1][0][1])
