import math

import pytest
import torch

from aigc_course import metrics
from aigc_course.models.hub import load_pretrained
from aigc_course.data.digits import load_digits


def _random_cov(d, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_known_values():
    mu, cov = torch.randn(5, dtype=torch.float64), _random_cov(5, 0)
    assert metrics.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2
    d = metrics.frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-2.0]), torch.tensor([[9.0]]))
    assert d == pytest.approx(9.0 + 1.0)
    # diagonal covariances: sum of (sqrt(a) - sqrt(b))^2
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 16.0])
    expected = sum((math.sqrt(x) - math.sqrt(y)) ** 2 for x, y in zip(a.tolist(), b.tolist()))
    assert metrics.frechet_distance(torch.zeros(3), torch.diag(a), torch.zeros(3), torch.diag(b)) == pytest.approx(expected)


def test_frechet_distance_is_symmetric_and_rotation_invariant():
    mu1, mu2 = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    c1, c2 = _random_cov(6, 1), _random_cov(6, 2)
    d = metrics.frechet_distance(mu1, c1, mu2, c2)
    assert d > 0
    assert metrics.frechet_distance(mu2, c2, mu1, c1) == pytest.approx(d, rel=1e-9)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert metrics.frechet_distance(q @ mu1, q @ c1 @ q.T, q @ mu2, q @ c2 @ q.T) == pytest.approx(d, rel=1e-8)


def test_statistics_and_shape_errors():
    mu, cov = metrics.feature_statistics(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    assert torch.allclose(mu, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert torch.allclose(cov, torch.full((2, 2), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="feature matrix"):
        metrics.feature_statistics(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="mismatched"):
        metrics.frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))


@pytest.fixture(scope="module")
def classifier():
    model, card = load_pretrained("digit_classifier")
    return model, card


def test_shipped_classifier_matches_its_card(classifier):
    model, card = classifier
    test = load_digits("test")
    assert metrics.accuracy(model, test) == pytest.approx(card["metrics"]["test_accuracy"], abs=1e-4)
    assert card["metrics"]["test_accuracy"] >= 0.98
    floor = metrics.fid(model, test.x[0::2], test.x[1::2])
    assert floor == pytest.approx(card["metrics"]["fid_floor_test_halves"], abs=1e-2)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model.features(torch.zeros(2, 28, 28))


def test_fid_and_coverage_tell_samples_from_real_digits(classifier):
    model, card = classifier
    test = load_digits("test")
    vae, _ = load_pretrained("vae_conv16")
    samples = vae.sample(1000, generator=torch.Generator().manual_seed(0))
    fid_samples = metrics.fid(model, test.x[0::2], samples)
    assert fid_samples > 3 * card["metrics"]["fid_floor_test_halves"]  # VAE samples are far from the real floor
    coverage = metrics.class_coverage(model, test.x)
    assert coverage.sum() == 2000 and coverage.min() >= 190  # 200 per class, ~99% correct
    assert metrics.class_coverage(model, samples).sum() == 1000


def test_nearest_neighbours_and_knn_radii():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    d, i = metrics.nearest_neighbours(torch.tensor([[2.9], [-1.0]]), points, k=2)
    assert i.tolist() == [[2, 1], [0, 1]]
    assert torch.allclose(d, torch.tensor([[0.1, 1.9], [1.0, 2.0]]), atol=1e-5)
    assert metrics.knn_radii(points, k=1).tolist() == pytest.approx([1.0, 1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="k must be"):
        metrics.nearest_neighbours(points, points, k=5)
    with pytest.raises(ValueError, match="values per row"):
        metrics.nearest_neighbours(torch.zeros(2, 3), points)


def test_precision_recall_hand_case_and_limits():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    # k=1 real radii are all 1: 0.5 is inside, 10 is not -> precision 1/2; the two generated points
    # are 9.5 apart, so their balls cover every real point -> recall 1.
    assert metrics.precision_recall(real, torch.tensor([[0.5], [10.0]]), k=1) == pytest.approx((0.5, 1.0))
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 4, generator=g)
    assert metrics.precision_recall(a, a.clone(), k=3) == (1.0, 1.0)
    assert metrics.precision_recall(a, a + 100, k=3) == (0.0, 0.0)
    # a generator that covers only half the data: realistic (high precision) but low recall
    half = a[a[:, 0] > 0]
    p, r = metrics.precision_recall(a, half, k=3)
    assert p == 1.0 and r < 0.7
