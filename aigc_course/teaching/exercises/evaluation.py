"""Lesson 06 (evaluating generative models): Fréchet distance, k-NN precision, FID from features, two
predictions.
"""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course import metrics as _metrics
from aigc_course.teaching.exercises.framework import Exercise, _randn, _size, letter, question

EXERCISES: dict[str, Exercise] = {}


def _gaussians(g: torch.Generator, d: int):
    a, b = (torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(2))
    mu1, mu2 = (torch.randn(d, generator=g, dtype=torch.float64) for _ in range(2))
    eye = torch.eye(d, dtype=torch.float64)
    return mu1, a @ a.T + 0.1 * eye, mu2, b @ b.T + 0.1 * eye


def _frechet_reference(mu1, cov1, mu2, cov2):
    return torch.tensor(_metrics.frechet_distance(mu1, cov1, mu2, cov2), dtype=torch.float32)


def _precision_reference(real, fake, k):
    precision, _ = _metrics.precision_recall(real, fake, k=k)
    return torch.tensor(precision)


def _precision_public():
    g = torch.Generator().manual_seed(61)
    return torch.randn(60, 3, generator=g), torch.randn(40, 3, generator=g) * 1.5 + 0.5, 3


def _precision_hidden(g: torch.Generator):
    d = _size(g, 1, 5)
    return _randn(g, _size(g, 20, 60), d), _randn(g, _size(g, 10, 40), d, scale=1.5) + 0.5, _size(g, 1, 5)


EXERCISES.update({e.id: e for e in (
    Exercise("6.1", "Fréchet distance", "06_evaluation", "my_frechet_distance",
             "||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)); the last trace is the sum of the "
             "square roots of the eigenvalues of sqrt(cov1) @ cov2 @ sqrt(cov1)",
             reference=_frechet_reference, public=lambda: _gaussians(torch.Generator().manual_seed(6), 4),
             hidden=lambda g: _gaussians(g, _size(g, 1, 6)),
             protects=("aigc_course.metrics.images:frechet_distance",)),
    Exercise("6.2", "k-NN precision", "06_evaluation", "my_precision",
             "radius of each real point = distance to its k-th nearest OTHER real point (torch.cdist, then "
             "sort; column 0 is the point itself); a sample counts if it lies within the radius of any real point",
             reference=_precision_reference, public=_precision_public, hidden=_precision_hidden,
             protects=("aigc_course.metrics.images:precision_recall",)),
)})


def check_frechet_distance(answer: Callable) -> None:
    """Exercise 6.1: ``answer(mu1, cov1, mu2, cov2)`` must return the squared Fréchet distance (a scalar tensor)."""
    EXERCISES["6.1"].check(answer)


def check_precision(answer: Callable) -> None:
    """Exercise 6.2: ``answer(real, fake, k)`` must return k-NN precision (a scalar tensor)."""
    EXERCISES["6.2"].check(answer)


# Lesson 06, continued: FID from raw features, and predictions.

def _fid_reference(real, fake):
    (mu1, cov1), (mu2, cov2) = _metrics.feature_statistics(real), _metrics.feature_statistics(fake)
    d = len(mu1)  # feature_statistics returns a 0-d covariance for D = 1 (torch.cov of one variable)
    return torch.tensor(_metrics.frechet_distance(mu1, cov1.reshape(d, d), mu2, cov2.reshape(d, d)),
                        dtype=torch.float64)


def _fid_close(got, expected, args) -> bool:
    """Within 1e-6 relative or 1e-6 absolute: rank-deficient covariances leave round-off in the square root."""
    return bool((got.double() - expected).abs().item() <= 1e-6 + 1e-6 * expected.abs().item())


def _features_pair(g: torch.Generator, n: int, m: int, d: int):
    mix = torch.randn(d, d, generator=g, dtype=torch.float64)
    real = torch.randn(n, d, generator=g, dtype=torch.float64) @ mix
    fake = torch.randn(m, d, generator=g, dtype=torch.float64) @ (mix * 1.3) + 0.5
    return real, fake


def _fid_hidden(g: torch.Generator):
    d = _size(g, 1, 8)
    return _features_pair(g, _size(g, 2, 40), _size(g, 2, 40), d)  # N < D often: rank-deficient covariances


def _fid_identical():
    real, _ = _features_pair(torch.Generator().manual_seed(63), 30, 2, 4)
    return real, real.clone()   # the same set twice: FID 0


def _fid_rank_deficient():
    return _features_pair(torch.Generator().manual_seed(64), 3, 4, 6)  # ranks 2 and 3 in 6 dimensions


def _answer_6_4():
    return letter("C")   # real vs real: 411.7 at N = 50, 13.6 at N = 1000


def _answer_6_5():
    return letter("A")   # the collapsed generator covers 3 of 8 modes: recall near 3/8


EXERCISES.update({e.id: e for e in (
    Exercise("6.3", "FID from features", "06_evaluation", "my_fid",
             "one mean and one covariance per set (a covariance needs the features of a sample as a column: "
             "check the shape is (D, D), and divide by N - 1), then the Fréchet distance of exercise 6.1",
             reference=_fid_reference, public=lambda: _features_pair(torch.Generator().manual_seed(62), 40, 40, 5),
             hidden=_fid_hidden, edge=(_fid_identical, _fid_rank_deficient), compare=_fid_close,
             protects=("aigc_course.metrics.images:feature_statistics",)),
    question("6.4", "prediction: FID against N", "06_evaluation",
             "a covariance estimated from few samples is noisy; does noise make two estimates look more alike, "
             "or less?", _answer_6_4, function="my_prediction_fid_n"),
    question("6.5", "prediction: lowest recall", "06_evaluation",
             "recall asks how much of the real data lies inside the generated samples' balls", _answer_6_5,
             function="my_prediction_recall"),
)})


def check_fid(answer: Callable) -> None:
    """Exercise 6.3: ``answer(real, fake)`` (N, D) and (M, D) features -> FID as a scalar tensor."""
    EXERCISES["6.3"].check(answer)


def check_prediction_fid_n(answer: Callable) -> None:
    """Exercise 6.4: the letter the learner predicted for real-vs-real FID as N shrinks."""
    EXERCISES["6.4"].check(answer)


def check_prediction_recall(answer: Callable) -> None:
    """Exercise 6.5: the letter of the generator the learner predicts has the lowest recall."""
    EXERCISES["6.5"].check(answer)
