"""Lesson 01 (variational autoencoders): reparameterisation, the KL term, a training step, two predictions."""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.models.vae import kl_to_standard_normal, reparameterize
from aigc_course.teaching.exercises.framework import Exercise, _one_thread, _randn, _size, letter, question

def _posterior_case(seed: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)


def _posterior_hidden(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, d = _size(g, 1, 9), _size(g, 1, 8)
    return _randn(g, b, d, scale=2.0), _randn(g, b, d, scale=2.0), _randn(g, b, d)


EXERCISES: dict[str, Exercise] = {e.id: e for e in (
    Exercise("1.1", "reparameterisation", "01_vae", "my_reparameterize",
             "z = mu + sigma * eps, and sigma = exp(logvar / 2), not exp(logvar)",
             reference=reparameterize, public=_posterior_case, hidden=_posterior_hidden,
             edge=(lambda: (torch.zeros(1, 4), torch.zeros(1, 4), torch.ones(1, 4)),)),
    Exercise("1.2", "KL divergence", "01_vae", "my_kl",
             "KL = 0.5 * sum over latent dims of (mu^2 + exp(logvar) - 1 - logvar), one value per example",
             reference=kl_to_standard_normal, public=lambda: _posterior_case()[:2],
             hidden=lambda g: _posterior_hidden(g)[:2],
             edge=(lambda: (torch.zeros(3, 2), torch.zeros(3, 2)),       # the prior itself: KL = 0
                   lambda: (torch.ones(1, 6), torch.full((1, 6), -2.0)))),
)}


def check_reparameterize(answer: Callable) -> None:
    """Exercise 1.1: ``answer(mu, logvar, eps)`` must return mu + exp(logvar / 2) * eps."""
    EXERCISES["1.1"].check(answer)


def check_kl(answer: Callable) -> None:
    """Exercise 1.2: ``answer(mu, logvar)`` must return KL(q || N(0, I)) per example, shape (B,)."""
    EXERCISES["1.2"].check(answer)


# Lesson 01, exercise 1.3: a whole VAE training step, graded by what it trains.
# ``run`` trains a small MLP VAE (latent 8, hidden 64) for VAE_STEPS steps of batch 32 with Adam on the
# digits it is given, calling the learner's step; ``compare`` loads the trained weights in the grader and
# measures the negative ELBO of 500 held-out digits. Calibration (tests/test_exercises.py repeats it):
# the reference step reaches 197-200 nats over seeds 0-3, an untrained VAE about 543; a step without
# zero_grad 252-365, one that ascends the loss diverges (> 1e28), one that drops the KL 233-289.
VAE_STEPS, VAE_BATCH, VAE_LR = 150, 32, 3e-3
VAE_STEP_THRESHOLD = 215.0   # nats per held-out digit: the reference's worst seed plus a 15-nat margin


def _step_vae(seed: int):
    from aigc_course.models.vae import VAE, VAEConfig

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return VAE(VAEConfig(arch="mlp", latent_dim=8, hidden=64))


def _train_vae_steps(step: Callable, args: tuple) -> torch.Tensor:
    """``run`` of 1.3: VAE_STEPS calls of ``step(model, optimizer, x, eps)``; the trained weights as one vector."""
    x, seed = args
    model, g = _step_vae(int(seed)), torch.Generator().manual_seed(int(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=VAE_LR)
    with _one_thread():
        for _ in range(VAE_STEPS):
            batch = x[torch.randint(len(x), (VAE_BATCH,), generator=g)]
            step(model, optimizer, batch, torch.randn(VAE_BATCH, model.latent_dim, generator=g))
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _vae_reference_step(model, optimizer, x, eps):
    from aigc_course.models.vae import elbo

    loss = elbo(model, x, eps=eps).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _vae_step_reference(x, seed):
    return _train_vae_steps(_vae_reference_step, (x, seed))


def _train_digits(g: torch.Generator, n: int = 256) -> torch.Tensor:
    from aigc_course import load_digits

    train = load_digits("train")
    return train.x[torch.randperm(len(train), generator=g)[:n]]


def heldout_negative_elbo(weights: torch.Tensor) -> float:
    """The negative ELBO (nats per digit) of exercise 1.3's VAE with ``weights`` on 500 held-out digits."""
    from aigc_course import load_digits
    from aigc_course.models.vae import elbo

    model = _step_vae(0)
    torch.nn.utils.vector_to_parameters(weights.float(), model.parameters())
    x = load_digits("test").x[::4]
    with torch.no_grad():
        eps = torch.randn(len(x), model.latent_dim, generator=torch.Generator().manual_seed(123))
        loss = elbo(model, x, eps=eps).loss.item()
    return loss if loss == loss else float("inf")


def _vae_trained_well(got, expected, args) -> bool:
    return bool(torch.isfinite(got).all()) and heldout_negative_elbo(got) < VAE_STEP_THRESHOLD


EXERCISES["1.3"] = Exercise(
    "1.3", "VAE training step", "01_vae", "my_vae_step",
    "after {steps} steps the held-out negative ELBO must fall below {threshold:.0f} nats: the loss is "
    "the batch mean of (reconstruction cross-entropy summed over pixels + KL), minimised (not maximised), and "
    "the gradients of the previous step are cleared before backward",
    hint_fields=(("steps", VAE_STEPS), ("threshold", VAE_STEP_THRESHOLD)),
    reference=_vae_step_reference, public=lambda: (_train_digits(torch.Generator().manual_seed(0)), 0),
    hidden=lambda g: (_train_digits(g), _size(g, 1, 10_000)), run=_train_vae_steps, compare=_vae_trained_well,
    protects=(f"{__name__}:_vae_reference_step", "aigc_course.models.vae:elbo"))


def check_vae_step(answer: Callable) -> None:
    """Exercise 1.3: ``answer(model, optimizer, x, eps)`` must do one step of ELBO training."""
    EXERCISES["1.3"].check(answer)


def _answer_1_4():
    return letter("B")


def _answer_1_5():
    return letter("C")


EXERCISES.update({e.id: e for e in (
    question("1.4", "rate as beta grows (prediction)", "01_vae",
             "beta multiplies the KL term of the loss: what does the optimiser do to a term that costs more?",
             _answer_1_4, letters="ABC"),
    question("1.5", "IW-NLL against -ELBO (prediction)", "01_vae",
             "the ELBO is a lower bound on log p(x), and importance sampling with k = 500 tightens it",
             _answer_1_5, letters="ABC"),
)})
