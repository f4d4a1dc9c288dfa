"""One image convention: every generator's public API returns grey values in [0, 1].

For each family, on random weights: the [0, 1] API stays in [0, 1], and it equals the conversion a caller
used to write by hand (sigmoid of the VAE's logits, (x + 1) / 2 of the [-1, 1] model space), computed here
from the model's internal output, so the new names change no pixel.
"""
import pytest
import torch

from aigc_course.models import pixels
from aigc_course.models.diffusion import UNet, UNetConfig, sample, sample_trajectory
from aigc_course.models.gan import DCGAN, DCGANConfig
from aigc_course.models.vae import VAE, VAEConfig


def in_unit_range(x: torch.Tensor) -> bool:
    return bool(x.min() >= 0 and x.max() <= 1)


def test_model_range_round_trip_by_hand():
    images = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.equal(pixels.to_model_range(images), torch.tensor([-1.0, -0.5, 0.0, 1.0]))
    assert torch.equal(pixels.from_model_range(torch.tensor([-1.0, -0.5, 0.0, 1.0])), images)
    # a noisy x_t overshoots [-1, 1]: it is clipped to black and white, not wrapped or stretched
    assert torch.equal(pixels.from_model_range(torch.tensor([-3.0, 2.5])), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("arch,latent", [("mlp", 2), ("conv", 16)])
def test_vae_decode_mean_and_sample_are_sigmoid_of_the_logits(arch, latent):
    torch.manual_seed(0)
    model = VAE(VAEConfig(arch=arch, latent_dim=latent, hidden=32))
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3)                                     # logits well outside [0, 1]
        z = torch.randn(6, latent)
        logits = model.decode(z)                          # the loss path keeps logits
        assert not in_unit_range(logits)
        means = model.decode_mean(z)
        assert in_unit_range(means) and means.shape == (6, 1, 28, 28)
        assert torch.equal(means, torch.sigmoid(logits))                        # the old conversion
        assert torch.allclose(means, 1 / (1 + torch.exp(-logits)), atol=1e-6)  # the logistic function, written out
        drawn = model.sample(6, generator=torch.Generator().manual_seed(3))
        by_hand = torch.sigmoid(model.decode(torch.randn(6, latent, generator=torch.Generator().manual_seed(3))))
    assert torch.equal(drawn, by_hand) and in_unit_range(drawn)


def test_vae_decode_mean_is_differentiable():
    model = VAE(VAEConfig(latent_dim=2, hidden=16))
    z = torch.zeros(1, 2, requires_grad=True)
    model.decode_mean(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("classes", [0, 10])
def test_dcgan_generate_and_sample_are_the_model_range_rescaled(classes):
    torch.manual_seed(0)
    model = DCGAN(DCGANConfig(latent_dim=8, channels=4, num_classes=classes)).eval()
    z = torch.randn(5, 8)
    labels = torch.arange(5) if classes else None
    with torch.no_grad():
        raw = model.generate_raw(z, labels)               # training's [-1, 1]: what D sees
    images = model.generate(z, labels)
    assert raw.min() < 0 and in_unit_range(images)
    assert torch.equal(images, (raw + 1) / 2)
    drawn = model.sample(5, generator=torch.Generator().manual_seed(1), labels=labels)
    with torch.no_grad():
        again = model.generate_raw(torch.randn(5, 8, generator=torch.Generator().manual_seed(1)), labels)
    assert torch.equal(drawn, (again + 1) / 2) and in_unit_range(drawn)
    real = torch.tensor([0.0, 1.0])
    assert torch.equal(DCGAN.to_model_range(real), torch.tensor([-1.0, 1.0]))


def _tiny_unet() -> UNet:
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=(8, 8, 16), time_dim=16, attention_heads=2, dropout=0.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.1)
    return model


def test_diffusion_sample_and_trajectory_are_in_unit_range_and_equal_the_old_conversion():
    model = _tiny_unet()
    seen = []
    out = sample(model, 2, [1, 8], steps=5, generator=torch.Generator().manual_seed(0),
                 callback=lambda t, x, x0: seen.append((t, x.clone(), x0.clone())))
    assert in_unit_range(out)
    assert min(x.min() for _, x, _ in seen) < -1                   # the callback sees model space: x_T ~ N(0, I)
    trajectory = sample_trajectory(model, 2, [1, 8], steps=5, generator=torch.Generator().manual_seed(0))
    assert trajectory.timesteps == [t for t, _, _ in seen] + [-1]
    for (_, x, x0), shown, shown0 in zip(seen, trajectory.xs, trajectory.x0s):
        assert torch.equal(shown, (x.clamp(-1, 1) + 1) / 2) and torch.equal(shown0, (x0.clamp(-1, 1) + 1) / 2)
    assert all(in_unit_range(x) for x in trajectory.xs + trajectory.x0s)
    assert torch.equal(trajectory.xs[-1], out) and torch.equal(trajectory.x0s[-1], out)
    with pytest.raises(ValueError, match="callback"):
        sample_trajectory(model, 1, 3, steps=2, callback=print)


def test_the_leaderboard_refuses_images_outside_unit_range():
    from aigc_course.metrics.leaderboard import evaluate_samples
    from aigc_course.models.classifier import DigitClassifier

    classifier, real = DigitClassifier().eval(), torch.rand(8, 1, 28, 28)
    with pytest.raises(ValueError, match=r"\[0, 1\].*decode_mean"):
        evaluate_samples(classifier, real * 2 - 1, real)       # a generator's [-1, 1] model space
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate_samples(classifier, real + 0.5, real)
