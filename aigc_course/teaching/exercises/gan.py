"""Lesson 02 (GANs): the two losses, mode counts, the two players' updates, two predictions."""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.models.gan import (discriminator_loss, generator_loss_nonsaturating,
                                    mode_counts, ring_centres)
from aigc_course.teaching.exercises.framework import Exercise, _one_thread, _randn, _size, letter, question

EXERCISES: dict[str, Exercise] = {}


# --- Lesson 02: GANs ---


def _logits_case(seed: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, generator=g) * 3, torch.randn(6, generator=g) * 3 - 2


def _logits_hidden(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return _randn(g, _size(g, 1, 12), scale=4.0), _randn(g, _size(g, 1, 12), scale=4.0) - 1


def _mode_counts_public():
    g = torch.Generator().manual_seed(5)
    centres = ring_centres(8, 2.0)
    # a half-collapsed sampler: most points near modes 1 and 6, a few near 3, some in between
    which = torch.tensor([1] * 9 + [6] * 7 + [3] * 2)
    near = centres[which] + 0.04 * torch.randn(len(which), 2, generator=g)
    between = 1.2 * torch.randn(5, 2, generator=g)
    samples = torch.cat([near, between])[torch.randperm(len(which) + 5, generator=g)]
    return samples, centres, 0.05


def _mode_counts_hidden(g: torch.Generator):
    k, std = _size(g, 3, 10), 0.05 + 0.1 * float(torch.rand(1, generator=g))
    centres = ring_centres(k, 2.0)
    which = torch.randint(0, k, (_size(g, 5, 40),), generator=g)
    near = centres[which] + std * torch.randn(len(which), 2, generator=g)  # some within 3 std, some not
    return torch.cat([near, _randn(g, 4, 2, scale=1.5)]), centres, std


def _mode_counts_reference(samples, centres, std):
    return mode_counts(samples, centres, std).float()


EXERCISES.update({e.id: e for e in (
    Exercise("2.1", "discriminator loss", "02_gan", "my_discriminator_loss",
             "loss = mean(softplus(-real_logits)) + mean(softplus(fake_logits)), i.e. -log D(x) - log(1 - D(G(z))) "
             "with D = sigmoid(logit): one scalar",
             reference=discriminator_loss, public=_logits_case, hidden=_logits_hidden),
    Exercise("2.2", "non-saturating generator loss", "02_gan", "my_generator_loss",
             "G minimises -log D(G(z)) = mean(softplus(-fake_logits)), not log(1 - D(G(z))): one scalar",
             reference=generator_loss_nonsaturating, public=lambda: _logits_case()[1:],
             hidden=lambda g: _logits_hidden(g)[1:], edge=(lambda: (torch.tensor([-30.0, 0.0, 30.0]),),)),
    Exercise("2.3", "mode counts", "02_gan", "my_mode_counts",
             "for each sample find the nearest centre (torch.cdist, then min over centres); count it for that "
             "centre only if the distance is <= 3 * std (torch.bincount(..., minlength=K))",
             reference=_mode_counts_reference, public=_mode_counts_public, hidden=_mode_counts_hidden,
             protects=("aigc_course.models.gan:mode_counts",)),
)})


def check_discriminator_loss(answer: Callable) -> None:
    """Exercise 2.1: ``answer(real_logits, fake_logits)`` must return -E[log D(x)] - E[log(1 - D(G(z)))]."""
    EXERCISES["2.1"].check(answer)


def check_generator_loss(answer: Callable) -> None:
    """Exercise 2.2: ``answer(fake_logits)`` must return the non-saturating loss -E[log D(G(z))]."""
    EXERCISES["2.2"].check(answer)


def check_mode_counts(answer: Callable) -> None:
    """Exercise 2.3: ``answer(samples, centres, std)`` must return per-mode counts (K,) within 3 std."""
    EXERCISES["2.3"].check(answer)


# Lesson 02, exercise 2.4: the two GAN updates, graded by the modes the trained generator covers.
# ``run`` trains a small ToyGAN (2 hidden layers of 64) for GAN_STEPS steps of batch 128 on the ring of
# 8 Gaussians (std GAN_RING_STD, so a mode is hit within 3 * 0.2 = 0.6 of its centre), calling the
# learner's step; it returns 2,000 samples from fixed noise, and ``compare`` counts the covered modes in
# the grader (mode_coverage: >= 2% of the samples each). Calibration (measured with these settings): the
# reference covers 8/8 in each of seeds 0-15 (with 400 steps two of them collapsed to 3 modes); in seeds
# 0-2 a step without zero_grad covers 0-2, a generator that ascends its loss 0, a discriminator with real
# and fake swapped 0.
GAN_STEPS, GAN_BATCH, GAN_RING_STD, GAN_MIN_MODES = 700, 128, 0.2, 6


def _train_gan_steps(step: Callable, args: tuple) -> torch.Tensor:
    """``run`` of 2.4: GAN_STEPS calls of ``step(gan, d_opt, g_opt, real, z)``; then 2,000 samples (2000, 2)."""
    from aigc_course.models.gan import ToyGAN, ToyGANConfig, sample_ring

    (seed,) = args
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        toy = ToyGAN(ToyGANConfig(latent_dim=2, hidden=64, layers=2))
    g = torch.Generator().manual_seed(int(seed))
    d_opt = torch.optim.Adam(toy.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(toy.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    with _one_thread():
        for _ in range(GAN_STEPS):
            real = sample_ring(GAN_BATCH, std=GAN_RING_STD, generator=g)
            step(toy, d_opt, g_opt, real, torch.randn(GAN_BATCH, toy.latent_dim, generator=g))
    with torch.no_grad():
        return toy.generate(torch.randn(2000, toy.latent_dim, generator=torch.Generator().manual_seed(99)))


def _gan_reference_step(toy, d_opt, g_opt, real, z):
    fake = toy.generate(z)
    d_loss = discriminator_loss(toy.discriminate(real), toy.discriminate(fake.detach()))
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = generator_loss_nonsaturating(toy.discriminate(fake))
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()


def _gan_step_reference(seed):
    return _train_gan_steps(_gan_reference_step, (seed,))


def modes_covered(samples: torch.Tensor) -> int:
    """How many of the ring's 8 modes hold at least 2% of ``samples`` within 3 std (exercise 2.4's measure)."""
    from aigc_course.models.gan import mode_coverage

    return mode_coverage(samples, ring_centres(8, 2.0), GAN_RING_STD).covered


def _gan_covers_modes(got, expected, args) -> bool:
    return bool(torch.isfinite(got).all()) and modes_covered(got) >= GAN_MIN_MODES


def _answer_2_5():
    return letter("B")


def _answer_2_6():
    return letter("A")


EXERCISES.update({e.id: e for e in (
    Exercise("2.4", "GAN training step", "02_gan", "my_gan_step",
             "after {steps} steps the generator must cover at least {modes} of the 8 modes: D learns "
             "real -> 1 and fake -> 0 on fakes cut from G's graph, then G minimises its non-saturating loss on "
             "D's logits for the same fakes; each player clears its gradients before its own backward",
             hint_fields=(("steps", GAN_STEPS), ("modes", GAN_MIN_MODES)),
             reference=_gan_step_reference, public=lambda: (0,), hidden=lambda g: (_size(g, 1, 10_000),),
             run=_train_gan_steps, compare=_gan_covers_modes,
             protects=(f"{__name__}:_gan_reference_step",)),
    question("2.5", "which loss has the gradient (prediction)", "02_gan",
             "look at the slope of each loss where D(G(z)) is close to 0", _answer_2_5, letters="ABC"),
    question("2.6", "vanilla or R1 (prediction)", "02_gan",
             "a smoother D pulls fewer points all the way into a mode: coverage and precision trade against each other",
             _answer_2_6, letters="ABC"),
)})


def check_gan_step(answer: Callable) -> None:
    """Exercise 2.4: ``answer(gan, d_opt, g_opt, real, z)`` must do one discriminator and one generator update."""
    EXERCISES["2.4"].check(answer)
