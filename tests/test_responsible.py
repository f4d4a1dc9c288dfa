import math

import pytest
import torch

from aigc_course import responsible as R
from aigc_course.data.digits import load_digits


@pytest.fixture(scope="module")
def digits():
    """Shuffled (the shipped splits are ordered by class), so any two halves hold the same digits."""
    g = torch.Generator().manual_seed(0)
    train, test = load_digits("train").x, load_digits("test").x
    return train[torch.randperm(len(train), generator=g)[:3000]], test[torch.randperm(len(test), generator=g)[:600]]


def test_dct_is_orthonormal_and_matches_the_formula():
    d = R.dct_matrix(8)
    assert torch.allclose(d @ d.T, torch.eye(8), atol=1e-5)
    x = torch.rand(8, 8)
    direct = torch.empty(8, 8)
    for u in range(8):
        for v in range(8):
            cu, cv = (math.sqrt(1 / 8) if u == 0 else math.sqrt(2 / 8)), (math.sqrt(1 / 8) if v == 0 else math.sqrt(2 / 8))
            direct[u, v] = cu * cv * sum(x[i, j] * math.cos(math.pi * (2 * i + 1) * u / 16) *
                                         math.cos(math.pi * (2 * j + 1) * v / 16) for i in range(8) for j in range(8))
    assert torch.allclose(R.dct2(x), direct, atol=1e-4)
    assert torch.allclose(R.idct2(R.dct2(x)), x, atol=1e-5)


def test_perturbations_do_what_they_say(digits):
    _, x = digits
    x = x[:50]
    assert torch.equal(R.gaussian_blur(x, 0), x)
    blurred = R.gaussian_blur(x, 1.0)
    assert blurred.shape == x.shape
    assert blurred.mean().item() == pytest.approx(x.mean().item(), rel=0.02)   # blur moves ink, keeps it
    high = lambda imgs: R.dct2(imgs)[..., 14:, 14:].pow(2).sum()
    assert high(blurred) < 0.05 * high(x)                                      # and removes high frequencies
    noisy = R.add_noise(torch.full((20, 1, 28, 28), 0.5), 0.05, seed=1)
    assert (noisy - 0.5).std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(noisy, R.add_noise(torch.full((20, 1, 28, 28), 0.5), 0.05, seed=1))
    assert (R.jpeg(x, 95) - R.quantise(x)).abs().mean() < (R.jpeg(x, 20) - R.quantise(x)).abs().mean()
    with pytest.raises(ValueError, match="quality"):
        R.jpeg(x, 0)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        R.gaussian_blur(torch.zeros(28, 28), 1.0)


def test_image_watermark_is_found_only_with_its_key(digits):
    train, test = digits
    wm = R.ImageWatermark(key=7).calibrate(train)
    clean = R.quantise(test)
    null = wm.score(clean)
    assert abs(null.mean().item()) < 0.3 and 0.7 < null.std().item() < 1.3       # ~N(0, 1) without the mark
    marked = wm.embed(test)
    assert R.psnr(clean, marked) > 28                                             # a faint change
    assert wm.detect(marked).float().mean() > 0.97
    assert wm.detect(clean).float().mean() < 0.01
    other_key = R.ImageWatermark(key=8).calibrate(train)
    assert other_key.detect(marked).float().mean() < 0.01
    assert wm.detect(R.gaussian_blur(marked, 1.5)).float().mean() < 0.5          # strong blur removes it


def test_image_watermark_needs_calibration():
    with pytest.raises(ValueError, match="calibrate"):
        R.ImageWatermark().score(torch.zeros(2, 1, 28, 28))


def test_detector_separates_real_from_blurred_but_not_real_from_real(digits):
    train, test = digits
    fake = R.gaussian_blur(train[1000:2000], 1.0)
    detector, history = R.train_detector(train[:1000], fake, epochs=2, seed=0)
    assert history.steps[-1]["loss"] < history.steps[0]["loss"]
    assert R.detector_accuracy(detector, test[:300], R.gaussian_blur(test[300:], 1.0)) > 0.95
    detector, _ = R.train_detector(train[:1000], train[1000:2000], epochs=2, seed=0)
    assert R.detector_accuracy(detector, test[:300], test[300:]) < 0.65


def test_green_lists_are_keyed_and_sized():
    wm = R.TextWatermark(vocab_size=100, gamma=0.25, key=1)
    mask = wm.green_mask(5)
    assert mask.sum() == 25 and torch.equal(mask, wm.green_mask(5))
    assert not torch.equal(mask, wm.green_mask(6))
    assert not torch.equal(mask, R.TextWatermark(vocab_size=100, gamma=0.25, key=2).green_mask(5))
    logits = torch.zeros(100)
    assert torch.equal(wm.bias(logits, 5), 2.0 * mask.float())
    with pytest.raises(ValueError, match="gamma"):
        R.TextWatermark(vocab_size=100, gamma=1.5)
    with pytest.raises(ValueError, match="vocabulary"):
        wm.bias(torch.zeros(99), 5)


def test_text_watermark_z_scores():
    vocab = 64
    table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0))  # a random bigram "language model"
    next_logits = lambda tokens: table[tokens[-1]]
    wm = R.TextWatermark(vocab_size=vocab, gamma=0.25, delta=2.0)
    plain = [wm.z_score(R.sample_tokens(next_logits, [1], 200, seed=s)) for s in range(8)]
    marked = [wm.z_score(R.sample_tokens(next_logits, [1], 200, watermark=wm, seed=s)) for s in range(8)]
    assert max(abs(z) for z in plain) < 4
    assert min(marked) > 6
    greens, total = wm.green_count([1, 2])
    assert total == 1 and greens == int(wm.green_mask(1)[2])
    assert wm.green_count([1, 2, 1, 2, 1, 2])[1] == 2                  # pairs (1, 2) and (2, 1), each once
    assert wm.green_count([1, 2, 1, 2, 1, 2], unique=False)[1] == 5


def test_top_k_sampling_only_picks_likely_tokens():
    logits = torch.arange(64.0) / 4                                    # token 63 most likely
    wm = R.TextWatermark(vocab_size=64, delta=10.0)
    tokens = R.sample_tokens(lambda t: logits, [0], 100, watermark=wm, top_k=3, seed=0)
    assert set(tokens[1:]) <= {61, 62, 63}
    with pytest.raises(ValueError, match="two tokens"):
        wm.z_score([3])
