"""Check helpers for the exercises: each prints exactly one deterministic verdict line.

Checks print and return ``None`` (a returned value would add a second output
line, and nbval runs cells without history, where a trailing ``;`` does not
silence it). A check never raises because of the learner's answer: an unfinished exercise
(``NotImplementedError``), an exception, a wrong shape or a wrong value each
print a verdict with a hint instead. Notebooks mark the check cell with
``# NBVAL_CHECK_OUTPUT`` so that ``pytest --nbval-lax`` compares the verdict
line with the correct one stored in the notebook.
"""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.models.vae import kl_to_standard_normal, reparameterize


def verdict(exercise: str, title: str, ok: bool, hint: str = "") -> bool:
    """Print ``Exercise <id> <title>: correct`` or ``...: not yet - <hint>``; return ``ok``."""
    print(f"Exercise {exercise} {title}: " + ("correct" if ok else f"not yet - {hint}"))
    return ok


def _compare(exercise: str, title: str, answer: Callable, args: tuple, expected: torch.Tensor,
             hint: str, atol: float = 1e-5) -> bool:
    try:
        got = answer(*args)
    except NotImplementedError:
        return verdict(exercise, title, False, "the exercise is not done yet (replace `raise NotImplementedError`)")
    except Exception as err:  # the learner's code raised: say so in one line
        return verdict(exercise, title, False, f"your code raised {type(err).__name__}: {err}")
    if not isinstance(got, torch.Tensor):
        return verdict(exercise, title, False, f"return a torch.Tensor, got {type(got).__name__}")
    if got.shape != expected.shape:
        return verdict(exercise, title, False, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}; {hint}")
    if not torch.allclose(got.float(), expected, atol=atol, rtol=1e-4):
        return verdict(exercise, title, False, hint)
    return verdict(exercise, title, True)


def _example_posterior(seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(5, 3, generator=g)
    logvar = torch.randn(5, 3, generator=g)
    eps = torch.randn(5, 3, generator=g)
    return mu, logvar, eps


def check_reparameterize(answer: Callable) -> None:
    """Exercise 1.1: ``answer(mu, logvar, eps)`` must return mu + exp(logvar / 2) * eps."""
    mu, logvar, eps = _example_posterior()
    _compare("1.1", "reparameterisation", answer, (mu, logvar, eps), reparameterize(mu, logvar, eps),
                    "z = mu + sigma * eps, and sigma = exp(logvar / 2), not exp(logvar)")


def check_kl(answer: Callable) -> None:
    """Exercise 1.2: ``answer(mu, logvar)`` must return KL(q || N(0, I)) per example, shape (B,)."""
    mu, logvar, _ = _example_posterior()
    _compare("1.2", "KL divergence", answer, (mu, logvar), kl_to_standard_normal(mu, logvar),
                    "KL = 0.5 * sum over latent dims of (mu^2 + exp(logvar) - 1 - logvar), one value per example")
