import math

import pytest
import torch
from torch import nn

from aigc_course.models.gan import (DCGAN, DCGANConfig, ToyGAN, ToyGANConfig, critic_loss_wasserstein,
                                    discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating,
                                    gradient_penalty, mode_counts, mode_coverage, r1_penalty, ring_centres,
                                    sample_ring)

LOG2 = math.log(2)


def test_losses_match_hand_computed_values():
    zero = torch.zeros(4)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * LOG2)   # D = 1/2 everywhere: 2 log 2
    # real logit 2 -> -log sigmoid(2) = log(1 + e^-2); fake logit -1 -> -log(1 - sigmoid(-1)) = log(1 + e^-1)
    got = discriminator_loss(torch.tensor([2.0]), torch.tensor([-1.0])).item()
    assert got == pytest.approx(math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1)))
    # G's minimax term E[log(1 - D)] and the non-saturating -E[log D] at D(G(z)) = sigmoid(0.5)
    d = 1 / (1 + math.exp(-0.5))
    assert generator_loss_saturating(torch.tensor([0.5])).item() == pytest.approx(math.log(1 - d))
    assert generator_loss_nonsaturating(torch.tensor([0.5])).item() == pytest.approx(-math.log(d))
    assert critic_loss_wasserstein(torch.tensor([3.0, 1.0]), torch.tensor([0.0])).item() == pytest.approx(-2.0)


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for value in (discriminator_loss(big, big), generator_loss_saturating(big), generator_loss_nonsaturating(big)):
        assert torch.isfinite(value)


def test_nonsaturating_loss_keeps_its_gradient_when_d_rejects_fakes():
    """The point of the non-saturating loss: at D(G(z)) ~ 0 the minimax loss gives G almost no gradient."""
    logit = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(generator_loss_saturating(logit), logit)
    (g_ns,) = torch.autograd.grad(generator_loss_nonsaturating(logit), logit)
    assert abs(g_sat.item()) < 1e-3 and abs(g_ns.item()) > 0.99   # -sigmoid(l) vs -(1 - sigmoid(l))


def test_optimal_discriminator_minimises_the_loss():
    """For two known densities the loss is lowest at D* = p_data / (p_data + p_g) (Goodfellow et al. Prop. 1)."""
    p_data, p_g = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.1, 0.3, 0.6])
    def expected_loss(d):  # -sum p_data log D - sum p_g log(1 - D)
        return -(p_data * d.log() + p_g * (1 - d).log()).sum()
    d_star = p_data / (p_data + p_g)
    best = expected_loss(d_star)
    for delta in (0.05, -0.05):
        assert expected_loss((d_star + delta).clamp(0.01, 0.99)) > best
    # and its value is 2 JS - log 4 with the sign flipped: log 4 - 2 JS
    m = (p_data + p_g) / 2
    js = 0.5 * (p_data * (p_data / m).log()).sum() + 0.5 * (p_g * (p_g / m).log()).sum()
    assert best.item() == pytest.approx(math.log(4) - 2 * js.item(), abs=1e-6)


def test_gradient_penalty_of_a_linear_critic_is_known():
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))   # ||grad|| = 5 everywhere
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(16.0)   # (5 - 1)^2
    assert r1_penalty(critic, real).item() == pytest.approx(25.0)
    with pytest.raises(ValueError, match="shape"):
        gradient_penalty(critic, real, fake[:4])


def test_ring_and_mode_coverage():
    centres = ring_centres(8, 2.0)
    assert centres.shape == (8, 2) and torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    x = sample_ring(4000, std=0.05, generator=torch.Generator().manual_seed(0))
    cov = mode_coverage(x, centres, std=0.05)
    assert cov.covered == 8 and cov.high_quality > 0.98   # 3 std holds 98.9% of a 2-D Gaussian
    collapsed = centres[[0, 0, 3]] + 0.01
    assert mode_counts(collapsed, centres, 0.05).tolist() == [2, 0, 0, 1, 0, 0, 0, 0]
    cov = mode_coverage(torch.cat([collapsed, torch.zeros(1, 2)]), centres, 0.05)
    assert cov.covered == 2 and cov.high_quality == pytest.approx(0.75)   # the origin is far from every mode
    with pytest.raises(ValueError):
        sample_ring(10, std=0)


def test_a_few_discriminator_steps_lower_its_loss_on_the_toy():
    """Against a fixed generator, D's loss falls from about 2 log 2 (a coin flip) within a few Adam steps."""
    torch.manual_seed(0)
    model = ToyGAN(ToyGANConfig(hidden=32, layers=2))
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=1e-2)
    real = sample_ring(256, generator=torch.Generator().manual_seed(0))
    fake = model.generate(torch.randn(256, 2)).detach()
    losses = []
    for _ in range(30):
        loss = discriminator_loss(model.discriminate(real), model.discriminate(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert abs(losses[0] - 2 * LOG2) < 0.2 and losses[-1] < 0.5 * losses[0]


def test_toy_training_keeps_snapshots():
    from aigc_course.recipes.gan import ToyRecipe, train_toy_gan
    run = train_toy_gan(ToyRecipe(steps=20, seed=0), snapshot_every=10, n_samples=200, grid=8)
    assert [s.step for s in run.snapshots] == [0, 10, 20] and len(run.history.steps) == 20
    assert run.history.series("step") == list(range(1, 21)) and set(run.history.steps[0]) >= {"d_loss", "g_loss"}
    assert run.snapshots[-1].surface.shape == (8, 8) and run.snapshots[-1].samples.shape == (200, 2)
    assert not torch.equal(run.snapshots[0].samples, run.snapshots[-1].samples)
    assert 0 <= run.snapshots[-1].surface.min() and run.snapshots[-1].surface.max() <= 1   # sigmoid(D)
    with pytest.raises(ValueError, match="loss"):
        ToyRecipe(loss="hinge")


@pytest.mark.parametrize("classes", [0, 10])
def test_dcgan_shapes_and_ranges(classes):
    model = DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=classes))
    labels = torch.arange(5) if classes else None
    raw = model.generate_raw(torch.randn(5, 8), labels)
    assert raw.shape == (5, 1, 28, 28) and raw.abs().max() <= 1
    assert model.discriminate(raw, labels).shape == (5,)
    images = model.sample(3)
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_dcgan_errors_are_clear():
    cgan = DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=10))
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        cgan.generate(torch.randn(2, 7), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="unknown class label 12"):
        cgan.generate(torch.randn(2, 8), torch.tensor([1, 12]))
    with pytest.raises(ValueError, match="needs labels"):
        cgan.generate(torch.randn(2, 8))
    with pytest.raises(ValueError, match="unconditional"):
        DCGAN(DCGANConfig(latent_dim=8, channels=4)).generate(torch.randn(2, 8), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="28, 28"):
        cgan.discriminate(torch.rand(2, 28, 28), torch.tensor([1, 2]))


def test_one_train_step_updates_both_players():
    from aigc_course.recipes.gan import gan_train_step
    model = DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=10))
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=1e-3)
    g0 = [p.clone() for p in model.generator.parameters()]
    d0 = [p.clone() for p in model.discriminator.parameters()]
    logs = gan_train_step(model, opt_g, opt_d, torch.rand(6, 1, 28, 28), torch.arange(6))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"} and 0 < logs["d_real"] < 1
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))


def test_gan_steps_through_fit_equal_a_hand_written_loop():
    """fit with two optimisers and an update step makes exactly the updates of Algorithm 1 written out."""
    from aigc_course.recipes.gan import gan_step, gan_train_step
    from aigc_course.train import fit

    batches = [(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(i)), torch.arange(6) % 10)
               for i in range(3)]

    def fresh():
        torch.manual_seed(0)
        return DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=10))

    def adam(part):
        return lambda m: torch.optim.Adam(getattr(m, part).parameters(), lr=1e-3, betas=(0.5, 0.999))

    by_hand = fresh()
    opt_g, opt_d = adam("generator")(by_hand), adam("discriminator")(by_hand)
    gen = torch.Generator().manual_seed(7)
    hand_logs = [gan_train_step(by_hand, opt_g, opt_d, x, y, generator=gen) for x, y in batches]

    model = fresh()
    history = fit(model, gan_step(torch.Generator().manual_seed(7), bf16=False), batches, epochs=1,
                  optimizer={"g": adam("generator"), "d": adam("discriminator")}, progress=False)
    assert [row["d_loss"] for row in history.steps] == [log["d_loss"] for log in hand_logs]
    for a, b in zip(by_hand.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow  # a real (time-limited) training run on the digits
def test_train_gan_stops_on_time_and_writes_epoch_summary(tmp_path):
    import json

    from aigc_course.recipes.gan import GANRecipe, epoch_samples_path, train_gan
    recipe = GANRecipe(DCGANConfig(latent_dim=8, channels=4, num_classes=0), epochs=3)
    model, history, results = train_gan(recipe, out=tmp_path / "g", max_seconds=1.0, progress=False, evaluate=False)
    assert len(history.steps) < 3 * 125 and results["epochs_run"] == history.steps[-1]["epoch"]
    card = json.loads((tmp_path / "g.json").read_text())
    d_loss = [row["d_loss"] for row in history.steps if row["epoch"] == 1]
    assert card["history"]["epoch"][0] == 1
    assert card["history"]["d_loss"][0] == pytest.approx(sum(d_loss) / len(d_loss), abs=1e-4)
    assert epoch_samples_path(tmp_path / "g").is_file()


def test_checkpoint_round_trip(tmp_path):
    from aigc_course.core.checkpoints import save_checkpoint
    from aigc_course.models.hub import load_checkpoint
    model = DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=10)).eval()
    save_checkpoint(model, tmp_path / "g", {"metrics": {}})
    loaded, card = load_checkpoint(tmp_path / "g")
    z, y = torch.randn(3, 8), torch.tensor([1, 5, 9])
    assert card["kind"] == "DCGAN" and torch.equal(loaded.generate(z, y), model.generate(z, y))
    toy = ToyGAN(ToyGANConfig(hidden=8))
    save_checkpoint(toy, tmp_path / "t", {})
    assert torch.equal(load_checkpoint(tmp_path / "t")[0].generate(torch.zeros(2, 2)), toy.generate(torch.zeros(2, 2)))


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_shipped_gans_reproduce_their_card(name):
    """The card's FID is reproduced and lies above the real-vs-real floor (13.6); the cGAN beats vae_conv16 (223)."""
    from aigc_course.models.hub import load_pretrained
    from aigc_course.recipes.gan import evaluate_gan
    model, card = load_pretrained(name)
    got = evaluate_gan(model, n_coverage=1000)
    assert got["fid"] == pytest.approx(card["metrics"]["fid"], abs=0.2)
    assert got["fid"] > 13.6
    counts = torch.tensor(got["class_coverage"])
    assert (counts > 0).all(), f"a digit class is missing: {counts.tolist()}"
    if name == "cgan":
        assert got["label_accuracy"] > 0.8 and got["fid"] < 223


def test_cli_samples_a_requested_digit_and_rejects_bad_requests(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from aigc_course.__main__ import main
    out = tmp_path / "sevens.png"
    assert main(["sample", "gan", "--checkpoint", "cgan", "--label", "7", "--n", "16", "--scale", "1",
                 "--out", str(out)]) == 0
    assert np.asarray(Image.open(out)).shape == (4 * 30 + 2, 4 * 30 + 2)
    assert main(["sample", "gan", "--checkpoint", "cgan", "--label", "12", "--out", str(out)]) == 1
    assert "unknown class label 12" in capsys.readouterr().err
    assert main(["sample", "gan", "--checkpoint", "dcgan", "--label", "3", "--out", str(out)]) == 1
    assert "conditional" in capsys.readouterr().err
    assert main(["sample", "gan", "--checkpoint", "vae_conv16", "--out", str(out)]) == 1
    assert "not a gan" in capsys.readouterr().err
    assert main(["train", "gan", "--preset", "biggan"]) == 1
    assert "unknown gan preset" in capsys.readouterr().err


def test_cli_trains_a_toy_gan(capsys):
    from aigc_course.__main__ import main
    assert main(["train", "gan", "--preset", "toy_r1", "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert "toy_r1: 30 steps" in out and "modes covered" in out


def test_gan_explorer_generates_live():
    from aigc_course.views import widgets
    model = DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=10)).eval()
    explorer = widgets.GANExplorer(model, directions=3)
    before = bytes(explorer.image.value)
    explorer.set(1.0, -2.0, 0.5)
    z = explorer.z()
    assert torch.allclose(z, explorer.z_seed + torch.tensor([[1.0, -2.0, 0.5]]) @ explorer.directions)
    assert bytes(explorer.image.value) == widgets.digit_png(model.generate(z, torch.tensor([7]))[0], 196)
    explorer.label.value = "3"
    after_class = bytes(explorer.image.value)
    explorer.new_seed()
    assert len({before, after_class, bytes(explorer.image.value)}) == 3 and "seed 1" in explorer.status.value
    assert torch.allclose(explorer.directions @ explorer.directions.T, torch.eye(3), atol=1e-5)
    with pytest.raises(ValueError, match="directions"):
        widgets.GANExplorer(model, directions=9)


def test_toy_replay_draws_every_snapshot():
    from aigc_course.views import widgets
    from aigc_course.recipes.gan import ToyRecipe, train_toy_gan
    runs = {name: train_toy_gan(ToyRecipe(loss=loss, steps=10), snapshot_every=5, n_samples=100, grid=8)
            for name, loss in (("vanilla", "vanilla"), ("wgan", "wgan-gp"))}
    replay = widgets.ToyGANReplay(runs, size=64)
    last = bytes(replay.images["vanilla"].value)
    replay.show(0)
    assert bytes(replay.images["vanilla"].value) != last and "step 0" in replay.status.value
    frame = widgets.toy_frame(runs["vanilla"].snapshots[0], ring_centres(), 3.0, size=64)
    assert frame.shape == (64, 64, 3) and frame.dtype.name == "uint8"
    with pytest.raises(ValueError, match="at least one run"):
        widgets.ToyGANReplay({})


def test_student_build_of_the_gan_lesson_says_not_yet(tmp_path):
    """The learner version strips exactly the six solutions; run on the stubs the checks say "not yet",
    run on the lesson's solutions they say "correct"."""
    from pathlib import Path

    import nbformat
    import torch.nn.functional as F

    from aigc_course.teaching import grading
    from aigc_course.teaching.exercises import EXERCISES

    lesson_path = Path(__file__).resolve().parents[1] / "notebooks" / "02_gan.ipynb"
    lesson = nbformat.read(lesson_path, as_version=4)
    student = nbformat.read(grading.build_student([lesson_path], tmp_path)[0], as_version=4)
    changed = [i for i, (a, b) in enumerate(zip(lesson.cells, student.cells)) if a.source != b.source]
    ids = ("2.1", "2.2", "2.5", "2.6", "2.3", "2.4")  # in the order the lesson asks them
    assert len(changed) == len(ids)
    spaces = {"not yet": {"torch": torch, "F": F}, "correct": {"torch": torch, "F": F}}  # 2.4 uses 2.1 and 2.2
    for i, ex_id in zip(changed, ids):
        exercise = EXERCISES[ex_id]
        assert f"raise NotImplementedError('Exercise {ex_id}" in student.cells[i].source
        for source, verdict in ((student.cells[i].source, "not yet"), (lesson.cells[i].source, "correct")):
            namespace = spaces[verdict]
            exec(source, namespace)
            ok, line = exercise.evaluate(namespace[exercise.function])
            assert line.startswith(f"Exercise {ex_id}") and verdict in line
    checks = [c for c in student.cells if grading.CHECK_MARK in c.source]
    assert [c.outputs[0]["text"].split(":")[1].strip() for c in checks] == ["correct"] * 6
