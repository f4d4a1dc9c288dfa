"""Lesson 07 (responsible AIGC): the watermark z-score, a detector trained by the learner, two predictions."""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.teaching.exercises.framework import Exercise, _size, letter, question

EXERCISES: dict[str, Exercise] = {}


def _z_score_reference(greens, total, gamma):
    return (greens - gamma * total) / torch.sqrt(total * gamma * (1 - gamma))


def _z_score_hidden(g: torch.Generator):
    total = torch.randint(20, 400, (_size(g, 1, 6),), generator=g).double()
    return (total * torch.rand(total.shape, generator=g, dtype=torch.float64)).round(), total, \
        round(0.1 + 0.4 * float(torch.rand(1, generator=g)), 3)


EXERCISES.update({e.id: e for e in (
    Exercise("7.1", "watermark z-score", "07_responsible_aigc", "my_z_score",
             "z = (greens - gamma * T) / sqrt(T * gamma * (1 - gamma)), elementwise",
             reference=_z_score_reference,
             public=lambda: (torch.tensor([30.0, 50.0, 120.0]), torch.tensor([100.0, 100.0, 200.0]), 0.25),
             hidden=_z_score_hidden),
)})


def check_z_score(answer: Callable) -> None:
    """Exercise 7.1: ``answer(greens, total, gamma)`` must return the green-list z-scores."""
    EXERCISES["7.1"].check(answer)


# Lesson 07, continued: a detector trained by the learner, and predictions.

def _detector_data(g: torch.Generator, n: int, d: int, gap: float):
    """Real ~ N(m, I), generated ~ N(m + gap * u, I) in ``d`` dimensions, ``u`` a random unit vector,
    ``m`` a common offset of length 3: a linear detector needs its bias. Bayes accuracy Phi(gap / 2)."""
    u = torch.randn(d, generator=g, dtype=torch.float64)
    m = torch.randn(d, generator=g, dtype=torch.float64)
    u, m = u / u.norm(), 3 * m / m.norm()
    real = torch.randn(n, d, generator=g, dtype=torch.float64) + m
    fake = torch.randn(n, d, generator=g, dtype=torch.float64) + m + gap * u
    return real, fake, m, u


def _detector_case(g: torch.Generator, n: int, d: int, gap: float):
    real, fake, m, u = _detector_data(g, n, d, gap)
    return real, fake, 200, 0.5, torch.cat([m, gap * u])   # the last input: what the held-out sets are drawn from


def _train_detector_reference(real, fake, steps, lr, truth=None):
    """Full-batch gradient descent on the logistic loss from zeros; returns (w_1 .. w_D, b)."""
    x = torch.cat([real, fake]).double()
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))]).double()
    params = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    for _ in range(int(steps)):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ params[:-1] + params[-1], y)
        grad, = torch.autograd.grad(loss, params)
        params = (params - lr * grad).detach().requires_grad_(True)
    return params.detach()


def _detector_run(answer: Callable, args: tuple):
    real, fake, steps, lr, _ = args
    w, b = answer(real, fake, int(steps), float(lr))
    return torch.cat([torch.as_tensor(w, dtype=torch.float64).reshape(-1), torch.as_tensor(b, dtype=torch.float64).reshape(1)])


def _balanced_accuracy(params, real, fake) -> float:
    on_real = ((real @ params[:-1] + params[-1]) < 0).double().mean()
    on_fake = ((fake @ params[:-1] + params[-1]) > 0).double().mean()
    return float((on_real + on_fake) / 2)


def _heldout_accuracy_close_to_reference(got, expected, args) -> bool:
    """Balanced accuracy on 4,000 fresh held-out points (drawn here, in the grader) at most 0.03 below the
    reference detector's on the same points. Calibrated: the two agree to about 0.01 when the loop is right."""
    truth = args[4]
    d = len(truth) // 2
    g = torch.Generator().manual_seed(2027)
    real = torch.randn(2000, d, generator=g, dtype=torch.float64) + truth[:d]
    fake = torch.randn(2000, d, generator=g, dtype=torch.float64) + truth[:d] + truth[d:]
    if not torch.isfinite(got).all():
        return False
    return _balanced_accuracy(got.double(), real, fake) >= _balanced_accuracy(expected, real, fake) - 0.03


def _answer_7_3():
    return letter("D")   # JPEG quality 50 leaves the fewest marks found (0.116; blur 0.293)


def _answer_7_4():
    return letter("B")   # held-out human passages: z from 1.1 to 2.8, none reaches 4


EXERCISES.update({e.id: e for e in (
    Exercise("7.2", "training a detector", "07_responsible_aigc", "my_train_detector",
             "label real 0 and generated 1; score = x @ w + b; minimise the mean logistic loss "
             "(binary_cross_entropy_with_logits) by gradient descent, starting from zeros, for all the steps",
             reference=_train_detector_reference,
             public=lambda: _detector_case(torch.Generator().manual_seed(71), 100, 4, 2.0),
             hidden=lambda g: _detector_case(g, _size(g, 40, 150), _size(g, 2, 8),
                                             1.5 + 1.5 * float(torch.rand(1, generator=g))),
             run=_detector_run, compare=_heldout_accuracy_close_to_reference),
    question("7.3", "prediction: what erases the watermark", "07_responsible_aigc",
             "the mark lives in mid-to-high DCT frequencies: which processing throws away the most of those?",
             _answer_7_3, function="my_prediction_watermark"),
    question("7.4", "prediction: human text and the threshold", "07_responsible_aigc",
             "without the key's bias a text's green count is Binomial(T, gamma); "
             "how often does a standard normal exceed 4?", _answer_7_4, function="my_prediction_human_text"),
)})


def check_train_detector(answer: Callable) -> None:
    """Exercise 7.2: ``answer(real, fake, steps, lr)`` -> (w, b); judged by held-out balanced accuracy."""
    EXERCISES["7.2"].check(answer)


def check_prediction_watermark(answer: Callable) -> None:
    """Exercise 7.3: the letter of the post-processing the learner predicts removes the most watermarks."""
    EXERCISES["7.3"].check(answer)


def check_prediction_human_text(answer: Callable) -> None:
    """Exercise 7.4: the letter the learner predicted for held-out human text against the threshold z = 4."""
    EXERCISES["7.4"].check(answer)
