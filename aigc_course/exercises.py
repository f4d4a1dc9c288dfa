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


# --- Lesson 03: neural style transfer ---
from aigc_course.models.style import gram_matrix as _gram_matrix  # noqa: E402
from aigc_course.models.style import style_loss as _style_loss  # noqa: E402
from aigc_course.models.style import total_variation as _total_variation  # noqa: E402


def _feature_case(seed: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 4, 5, 6, generator=g), torch.rand(2, 8, 3, 3, generator=g)]


def _gram_case():
    (features, _) = _feature_case()
    return (features,), _gram_matrix(features)


def _style_loss_case():
    features = _feature_case()
    targets = [_gram_matrix(f.flip(0)) for f in _feature_case(seed=4)]
    return (features, targets), _style_loss(features, targets)


def _tv_case():
    image = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(5))
    return (image,), _total_variation(image)


EXERCISES.update({e.id: e for e in (
    Exercise("3.1", "Gram matrix", "03_style_transfer", "my_gram_matrix",
             "reshape to (B, C, H*W), multiply by its transpose (B, H*W, C) and divide by C*H*W",
             _gram_case),
    Exercise("3.2", "style loss", "03_style_transfer", "my_style_loss",
             "for each layer: mean squared difference between the Gram matrix of the features and the "
             "target Gram matrix; add the layers up", _style_loss_case),
    Exercise("3.3", "total variation", "03_style_transfer", "my_total_variation",
             "mean of squared differences between vertical neighbours plus the same for horizontal ones",
             _tv_case),
)})


def check_gram_matrix(answer: Callable) -> None:
    """Exercise 3.1: ``answer(features)`` (B, C, H, W) -> (B, C, C) Gram matrices divided by C*H*W."""
    EXERCISES["3.1"].check(answer)


def check_style_loss(answer: Callable) -> None:
    """Exercise 3.2: ``answer(features, target_grams)`` -> sum over layers of mse(Gram(F_l), A_l)."""
    EXERCISES["3.2"].check(answer)


def check_total_variation(answer: Callable) -> None:
    """Exercise 3.3: ``answer(image)`` -> mean squared vertical + mean squared horizontal differences."""
    EXERCISES["3.3"].check(answer)
