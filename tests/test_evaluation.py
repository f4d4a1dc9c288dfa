import pytest
import torch

from aigc_course.metrics import leaderboard
from aigc_course.models.hub import load_pretrained
from aigc_course.data.digits import load_digits


@pytest.fixture(scope="module")
def setting():
    classifier, _ = load_pretrained("digit_classifier")
    g = torch.Generator().manual_seed(0)
    test, train = load_digits("test"), load_digits("train")
    order = torch.randperm(len(test), generator=g)
    return classifier, test.x[order[:500]], test.x[order[500:1000]], train.x, test.labels[order[500:1000]]


def test_class_entropy():
    assert leaderboard.class_entropy_bits(torch.ones(10)) == pytest.approx(3.3219, abs=1e-4)
    assert leaderboard.class_entropy_bits(torch.tensor([0, 7, 0])) == 0.0


def test_real_digits_score_like_real_digits(setting):
    classifier, real, other_real, train, _ = setting
    row = leaderboard.evaluate_samples(classifier, other_real, real, train=train)
    assert row["fid"] < 80 and row["precision"] > 0.8 and row["recall"] > 0.8
    assert row["classes_seen"] == 10 and row["class_entropy_bits"] > 3.2
    assert 0.8 < row["nn_ratio"] < 1.25


def test_a_collapsed_or_copying_generator_is_caught(setting):
    classifier, real, other_real, train, labels = setting
    sevens = other_real[labels == 7].repeat(10, 1, 1, 1)[:500]        # mode collapse onto one class
    row = leaderboard.evaluate_samples(classifier, sevens, real)
    assert row["classes_seen"] == 1 and row["class_entropy_bits"] < 0.2
    assert row["recall"] < 0.3 and row["fid"] > 100
    copies = train[:500]                                               # memorisation: training digits verbatim
    assert leaderboard.evaluate_samples(classifier, copies, real, train=train)["nn_ratio"] < 0.01
    blurry = torch.full_like(real, real.mean().item())                  # no digits at all
    assert leaderboard.evaluate_samples(classifier, blurry, real)["precision"] < 0.05


def test_fid_falls_with_more_samples_and_pixels_are_a_different_scale(setting):
    classifier, real, other_real, _, _ = setting
    curve = leaderboard.fid_versus_n(classifier, real, other_real, [50, 200, 500])
    assert curve[0] > curve[1] > curve[2]
    with pytest.raises(ValueError, match="sizes"):
        leaderboard.fid_versus_n(classifier, real, other_real, [1000])
    assert leaderboard.pixel_fid(real, other_real) > 0
    with pytest.raises(ValueError, match="digits"):
        leaderboard.evaluate_samples(classifier, torch.zeros(4, 28, 28), real)


def test_the_leaderboard_covers_every_shipped_digit_generator():
    """Read from the asset registry, not from the leaderboard: a new generator checkpoint in data/ must
    also be added to the leaderboard (or this test's list of kinds changed on purpose)."""
    import json
    import re

    from aigc_course.core import assets

    cards = {path: json.loads(assets.asset_path(path).read_text()) for path in assets.registry()
             if path.startswith("checkpoints/") and path.endswith(".json")}
    shipped = {card["name"] for card in cards.values() if card["kind"] in {"VAE", "DCGAN", "UNet"}}
    assert shipped == {"vae_mlp2d", "vae_conv16", "dcgan", "cgan", "ddpm_digits"}
    # each display name ends with its checkpoint: "VAE (2-D, vae_mlp2d)", "DCGAN (dcgan)"
    on_board = [re.search(r"([a-z0-9_]+)\)$", name).group(1) for name in leaderboard.COURSE_GENERATORS]
    assert sorted(on_board) == sorted(shipped)


def test_course_generators_are_deterministic_samplers():
    samplers = leaderboard.course_generators()
    assert len(samplers) == 5
    for name, sample in samplers.items():
        a, b = sample(4, 1), sample(4, 1)
        assert a.shape == (4, 1, 28, 28) and torch.equal(a, b), name
        assert 0 <= a.min() and a.max() <= 1
        assert not torch.equal(a, sample(4, 2))
    with pytest.raises(ValueError, match="unknown generator"):
        leaderboard.course_generators(["GPT"])
