"""The course's exercises and their checks: each check prints exactly one deterministic verdict line.

An exercise knows its inputs and the reference answer; ``Exercise.evaluate``
compares a learner's function with it and returns ``(ok, line)``, never raising
because of the learner's code: an unfinished exercise (``NotImplementedError``),
an exception, a wrong type, shape or value each give a verdict with a hint.

Notebooks call ``check_reparameterize(my_reparameterize)`` in a cell marked
``# NBVAL_CHECK_OUTPUT``, so ``pytest --nbval-lax`` compares the printed line
with the correct one stored in the notebook. Checks print and return ``None``
(a returned value would add a second output, and nbval runs cells without
history, where a trailing ``;`` does not silence it). The grader
(``aigc_course.grading``) calls ``evaluate`` on the learner's objects instead of
trusting printed text.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from aigc_course.models.vae import kl_to_standard_normal, reparameterize


def verdict_line(exercise: str, title: str, ok: bool, hint: str = "") -> str:
    """``Exercise <id> <title>: correct`` or ``Exercise <id> <title>: not yet - <hint>``."""
    return f"Exercise {exercise} {title}: " + ("correct" if ok else f"not yet - {hint}")


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it lives, the function the learner writes, and how to test it."""

    id: str
    title: str
    notebook: str   # file stem of the lesson, e.g. "01_vae"
    function: str   # the name the learner's solution cell defines
    hint: str
    case: Callable[[], tuple[tuple, torch.Tensor]]  # () -> (inputs, expected output)

    def evaluate(self, answer: Callable) -> tuple[bool, str]:
        """Run ``answer`` on this exercise's inputs; return (correct?, verdict line)."""
        args, _ = self.case()
        try:
            got = answer(*args)
        except Exception as err:  # the learner's code raised: judged below, in one line
            got = err
        return self.judge(got)

    def judge(self, got) -> tuple[bool, str]:
        """Verdict for what the learner's function returned (or the exception it raised)."""
        _, expected = self.case()
        if isinstance(got, NotImplementedError):
            return self._result(False, "the exercise is not done yet (replace `raise NotImplementedError`)")
        if isinstance(got, BaseException):
            return self._result(False, f"your code raised {type(got).__name__}: {got}")
        if not isinstance(got, torch.Tensor):
            return self._result(False, f"return a torch.Tensor, got {type(got).__name__}")
        if got.shape != expected.shape:
            return self._result(False, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}; {self.hint}")
        ok = torch.allclose(got.detach().float(), expected, atol=1e-5, rtol=1e-4)
        return self._result(ok, self.hint)

    def _result(self, ok: bool, hint: str) -> tuple[bool, str]:
        return ok, verdict_line(self.id, self.title, ok, hint)

    def check(self, answer: Callable) -> None:
        """Print the verdict. Under nbgrader's autograder a wrong answer also raises
        ``AssertionError``, because nbgrader scores a test cell by whether it raises."""
        ok, line = self.evaluate(answer)
        print(line)
        if not ok and os.environ.get("NBGRADER_EXECUTION") == "autograde":
            raise AssertionError(line)


def _posterior_case(seed: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)


def _reparameterize_case():
    mu, logvar, eps = _posterior_case()
    return (mu, logvar, eps), reparameterize(mu, logvar, eps)


def _kl_case():
    mu, logvar, _ = _posterior_case()
    return (mu, logvar), kl_to_standard_normal(mu, logvar)


EXERCISES = {e.id: e for e in (
    Exercise("1.1", "reparameterisation", "01_vae", "my_reparameterize",
             "z = mu + sigma * eps, and sigma = exp(logvar / 2), not exp(logvar)", _reparameterize_case),
    Exercise("1.2", "KL divergence", "01_vae", "my_kl",
             "KL = 0.5 * sum over latent dims of (mu^2 + exp(logvar) - 1 - logvar), one value per example",
             _kl_case),
)}


def exercises_for(notebook: str) -> list[Exercise]:
    """The exercises of one lesson notebook (by file stem), in order."""
    return [e for e in EXERCISES.values() if e.notebook == notebook]


def check_reparameterize(answer: Callable) -> None:
    """Exercise 1.1: ``answer(mu, logvar, eps)`` must return mu + exp(logvar / 2) * eps."""
    EXERCISES["1.1"].check(answer)


def check_kl(answer: Callable) -> None:
    """Exercise 1.2: ``answer(mu, logvar)`` must return KL(q || N(0, I)) per example, shape (B,)."""
    EXERCISES["1.2"].check(answer)


# --- Lesson 04: diffusion ---

def _diffusion_case(seed: int = 11):
    """A small batch (B=4, 1x28x28) with per-example timesteps, a noise draw and a noise prediction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    return x, torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)


def _q_sample_case():
    from aigc_course.models.diffusion import linear_schedule, q_sample

    x0, noise, _ = _diffusion_case()
    abar = linear_schedule().alphas_cumprod
    t = torch.tensor([0, 120, 500, 999])
    return (x0, t, noise, abar), q_sample(linear_schedule(), x0, t, noise)


def _ddpm_step_case():
    from aigc_course.models.diffusion import ddpm_step, linear_schedule

    x_t, eps, z = _diffusion_case(12)
    schedule = linear_schedule()
    t = 600
    args = (x_t, eps, t, schedule.betas, schedule.alphas_cumprod, z)
    return args, ddpm_step(schedule, x_t, eps, t, noise=z, clip=False)


def _ddim_step_case():
    from aigc_course.models.diffusion import ddim_step, linear_schedule

    x_t, eps, _ = _diffusion_case(13)
    schedule = linear_schedule()
    t, t_prev = 700, 680
    args = (x_t, eps, t, t_prev, schedule.alphas_cumprod)
    return args, ddim_step(schedule, x_t, eps, t, t_prev, eta=0.0, clip=False)


EXERCISES.update({e.id: e for e in (
    Exercise("4.1", "q_sample", "04_diffusion", "my_q_sample",
             "x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise, with abar_t = alphas_cumprod[t] reshaped to "
             "(B, 1, 1, 1) so each image gets its own t", _q_sample_case),
    Exercise("4.2", "one DDPM reverse step", "04_diffusion", "my_ddpm_step",
             "x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) * "
             "x0_hat + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) * x_t; add sqrt((1 - abar_{t-1}) / "
             "(1 - abar_t) * beta_t) * z", _ddpm_step_case),
    Exercise("4.3", "DDIM update", "04_diffusion", "my_ddim_step",
             "x0_hat as in 4.2, then x_prev = sqrt(abar_prev) * x0_hat + sqrt(1 - abar_prev) * eps (eta = 0: "
             "no fresh noise)", _ddim_step_case),
)})


def check_q_sample(answer: Callable) -> None:
    """Exercise 4.1: ``answer(x0, t, noise, alphas_cumprod)`` must return x_t ~ q(x_t | x_0) for that noise."""
    EXERCISES["4.1"].check(answer)


def check_ddpm_step(answer: Callable) -> None:
    """Exercise 4.2: ``answer(x_t, eps, t, betas, alphas_cumprod, z)`` must return x_{t-1} (no clipping)."""
    EXERCISES["4.2"].check(answer)


def check_ddim_step(answer: Callable) -> None:
    """Exercise 4.3: ``answer(x_t, eps, t, t_prev, alphas_cumprod)`` must return the eta = 0 DDIM x_{t_prev}."""
    EXERCISES["4.3"].check(answer)
