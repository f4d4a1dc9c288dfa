"""Generative adversarial networks (Goodfellow et al. 2014, arXiv:1406.2661).

A generator G maps noise z ~ N(0, I) to a sample; a discriminator D maps a
sample to a logit l, with D(x) = sigmoid(l) the probability that x is real.
They play the minimax game::

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_G(x)),
and against D* the game's value is 2 JS(p_data || p_G) - log 4, minimised
exactly when p_G = p_data.

Everything below works on *logits*, with ``softplus(t) = log(1 + e^t)``:
log D = -softplus(-l) and log(1 - D) = -softplus(l), which stays finite where
sigmoid would round to 0 or 1. The losses are pure functions:

* :func:`discriminator_loss`   -E[log D(x)] - E[log(1 - D(G(z)))]  (D's side of V, negated)
* :func:`generator_loss_saturating`      E[log(1 - D(G(z)))]  (G's side of V, as in the minimax game)
* :func:`generator_loss_nonsaturating`  -E[log D(G(z))]  (the paper's practical fix: strong gradients early)
* :func:`critic_loss_wasserstein` / :func:`generator_loss_wasserstein` and
  :func:`gradient_penalty` (WGAN-GP, Gulrajani et al. 2017), :func:`r1_penalty` (Mescheder et al. 2018).

Models: :class:`ToyGAN` (MLPs for 2-D points) and :class:`DCGAN` (Radford et al.
2015 guidelines for 28x28 digits: strided (transposed) convolutions, batch norm,
ReLU in G, LeakyReLU in D, tanh output), which becomes a class-conditional GAN
(Mirza & Osindero 2014) with ``num_classes=10``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.models.pixels import from_model_range, to_model_range

IMAGE_SHAPE = (1, 28, 28)


# --------------------------------------------------------------------------- losses (pure functions)

def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] = mean softplus(-l_real) + mean softplus(l_fake).

    Binary cross-entropy with label 1 for real and 0 for generated samples; its
    minimum over D is at D* = p_data / (p_data + p_G). Equals 2 log 2 ~ 1.386 when
    every logit is 0 (D says "50:50" everywhere).
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))] = -mean softplus(l_fake): the generator's term of the minimax value.

    Its gradient with respect to the logit is -sigmoid(l), which vanishes when D
    confidently rejects the fakes (l << 0): early in training G learns almost nothing.
    """
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))] = mean softplus(-l_fake): the "non-saturating" loss of Goodfellow et al. 2014.

    Same fixed point as the minimax loss, but its gradient with respect to the
    logit is -(1 - sigmoid(l)), close to -1 exactly when D rejects the fakes.
    """
    return F.softplus(-fake_logits).mean()


def critic_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss E[f(G(z))] - E[f(x)] (Arjovsky et al. 2017): minimising it widens the gap."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss -E[f(G(z))]."""
    return -fake_scores.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad_x f(x_hat)||_2 - 1)^2] at x_hat = alpha x + (1 - alpha) x_fake.

    Gulrajani et al. 2017 add it with weight lambda = 10 to keep the critic
    close to 1-Lipschitz. ``alpha`` (B, 1, ...) defaults to U(0, 1) per example.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    if alpha is None:
        alpha = torch.rand((len(real),) + (1,) * (real.ndim - 1), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 penalty E[||grad_x D(x)||^2] on real data (Mescheder et al. 2018); add gamma / 2 times it to D's loss.

    Penalising the slope of D at the data stops D from pushing G away from
    real points it has already reached, which damps the oscillation behind
    mode hopping.
    """
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


# --------------------------------------------------------------------------- the 2-D toy

def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """Centres (modes, 2) evenly spaced on a circle, the first at (radius, 0)."""
    angles = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def sample_ring(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """n points (n, 2) from an equal mixture of ``modes`` Gaussians N(centre, std^2 I) on a ring.

    The classic mode-collapse test (Metz et al. 2016 used 8 modes, radius 2).
    """
    if n < 1 or modes < 1 or std <= 0:
        raise ValueError(f"need n >= 1, modes >= 1 and std > 0, got n={n}, modes={modes}, std={std}")
    which = torch.randint(modes, (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * std
    return ring_centres(modes, radius)[which] + noise


def mode_counts(samples: torch.Tensor, centres: torch.Tensor, std: float, k: float = 3.0) -> torch.Tensor:
    """How many samples (N, 2) lie within ``k`` std of each centre (K, 2): counts (K,).

    A sample counts for its nearest centre only, and only if it is within k*std
    of it; samples farther from every centre are "low quality" and counted nowhere.
    """
    distances = torch.cdist(samples.float(), centres.float())   # (N, K)
    nearest, which = distances.min(dim=1)
    return torch.bincount(which[nearest <= k * std], minlength=len(centres))


@dataclass
class ModeCoverage:
    """Coverage of a mixture's modes by generated samples."""

    counts: list[int]       # samples within k std of each mode
    covered: int            # modes holding at least ``min_share`` of all samples
    high_quality: float     # share of samples within k std of some mode

    def __str__(self) -> str:
        return f"{self.covered}/{len(self.counts)} modes covered, {self.high_quality:.0%} high-quality samples"


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float, k: float = 3.0,
                  min_share: float = 0.02) -> ModeCoverage:
    """Modes covered and the share of high-quality samples (the measure of Srivastava et al. 2017).

    A mode is *covered* when at least ``min_share`` of all samples fall within
    ``k`` std of it (with 8 equal modes a perfect sampler puts 12.5% in each).
    """
    counts = mode_counts(samples, centres, std, k)
    n = len(samples)
    return ModeCoverage(counts=counts.tolist(), covered=int((counts >= min_share * n).sum()),
                        high_quality=counts.sum().item() / n)


@dataclass
class ToyGANConfig:
    """MLPs for 2-D data: ``latent_dim`` noise -> ``hidden`` x ``layers`` -> 2 (and 2 -> ... -> 1 logit)."""

    latent_dim: int = 2
    hidden: int = 128
    layers: int = 3

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("latent_dim, hidden and layers must all be >= 1")


def _mlp(inp: int, hidden: int, layers: int, out: int, act) -> nn.Sequential:
    mods, width = [], inp
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), act()]
        width = hidden
    return nn.Sequential(*mods, nn.Linear(width, out))


class ToyGAN(nn.Module):
    """A generator and a discriminator for points in the plane (``.generator``, ``.discriminator``)."""

    def __init__(self, config: ToyGANConfig | None = None):
        super().__init__()
        self.config = c = config or ToyGANConfig()
        self.generator = _mlp(c.latent_dim, c.hidden, c.layers, 2, nn.ReLU)
        self.discriminator = _mlp(2, c.hidden, c.layers, 1, lambda: nn.LeakyReLU(0.2))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> points (B, 2)."""
        _check_latent(z, self.latent_dim)
        return self.generator(z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Points (B, 2) -> logits (B,)."""
        return self.discriminator(x).squeeze(-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return self.generate(torch.randn(n, self.latent_dim, generator=generator).to(device))


# --------------------------------------------------------------------------- DCGAN for digits

@dataclass
class DCGANConfig:
    """``latent_dim``: size of z; ``channels``: width of G's last and D's first feature maps;
    ``num_classes``: 0 for an unconditional DCGAN, 10 for a class-conditional GAN."""

    latent_dim: int = 64
    channels: int = 64
    num_classes: int = 0
    embed_dim: int = 16

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.channels < 1 or self.num_classes < 0 or self.embed_dim < 1:
            raise ValueError("latent_dim, channels and embed_dim must be >= 1 and num_classes >= 0")


class Generator(nn.Module):
    """z (B, latent) [+ class label] -> image (B, 1, 28, 28) in [-1, 1] (tanh), DCGAN style.

    Conditioning: the label's learned embedding (embed_dim) is concatenated to z.
    """

    def __init__(self, c: DCGANConfig):
        super().__init__()
        ch = c.channels
        self.embed = nn.Embedding(c.num_classes, c.embed_dim) if c.num_classes else None
        inp = c.latent_dim + (c.embed_dim if c.num_classes else 0)
        self.net = nn.Sequential(                                                     # (B, inp)
            nn.Linear(inp, 2 * ch * 7 * 7, bias=False), nn.BatchNorm1d(2 * ch * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * ch, 7, 7)),                                          # (B, 2ch, 7, 7)
            nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ch), nn.ReLU(),                                            # (B, ch, 14, 14)
            nn.ConvTranspose2d(ch, 1, 4, stride=2, padding=1), nn.Tanh())             # (B, 1, 28, 28)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z)


class Discriminator(nn.Module):
    """Image (B, 1, 28, 28) in [-1, 1] [+ class label] -> logit (B,), DCGAN style.

    Conditioning is by projection (Miyato & Koyama 2018): logit = w.h + <e_y, h>,
    with h the flattened features and e_y a learned vector per class.
    """

    def __init__(self, c: DCGANConfig):
        super().__init__()
        ch = c.channels
        self.features = nn.Sequential(                                                # (B, 1, 28, 28)
            nn.Conv2d(1, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),              # (B, ch, 14, 14)
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2), nn.Flatten())                  # (B, 2ch*49)
        self.head = nn.Linear(2 * ch * 49, 1)
        self.project = nn.Embedding(c.num_classes, 2 * ch * 49) if c.num_classes else None
        if self.project is not None:
            nn.init.zeros_(self.project.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logit = self.head(h).squeeze(-1)
        if self.project is not None:
            logit = logit + (self.project(labels) * h).sum(dim=1)
        return logit


class DCGAN(nn.Module):
    """DCGAN (Radford et al. 2015, arXiv:1511.06434) for 28x28 digits; conditional when num_classes > 0.

    ``generate(z, labels)`` gives images in [0, 1] (the course's convention);
    internally G works in [-1, 1] with tanh, so real digits are scaled by 2x - 1
    before the discriminator sees them (``to_model_range``).
    """

    def __init__(self, config: DCGANConfig | None = None):
        super().__init__()
        self.config = config or DCGANConfig()
        self.generator = Generator(self.config)
        self.discriminator = Discriminator(self.config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def conditional(self) -> bool:
        return self.config.num_classes > 0

    def _check_labels(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise ValueError("this GAN is unconditional: leave labels out (load 'cgan' for class labels)")
            return None
        if labels is None:
            raise ValueError(f"this conditional GAN needs labels: a tensor (B,) of ints in 0..{self.config.num_classes - 1}")
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.ndim == 0:
            labels = labels.expand(batch)
        if labels.shape != (batch,):
            raise ValueError(f"need one label per latent: labels of shape ({batch},), got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.config.num_classes):
            raise ValueError(f"unknown class label {labels.max().item() if labels.max() >= self.config.num_classes else labels.min().item()}: "
                             f"labels must be in 0..{self.config.num_classes - 1}")
        return labels.to(next(self.parameters()).device)

    def generate_raw(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent_dim) -> images (B, 1, 28, 28) in model space [-1, 1], differentiable: for training only.

        Pictures come from ``generate`` / ``sample`` (in [0, 1]); the discriminator takes this range.
        """
        _check_latent(z, self.latent_dim)
        return self.generator(z, self._check_labels(labels, len(z)))

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [-1, 1] -> logits (B,)."""
        if x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"the discriminator takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.discriminator(x, self._check_labels(labels, len(x)))

    @staticmethod
    def to_model_range(images: torch.Tensor) -> torch.Tensor:
        """[0, 1] grey values -> [-1, 1], the range of G's tanh output (real digits, before D sees them)."""
        return to_model_range(images)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent_dim) [+ labels (B,)] -> images (B, 1, 28, 28) in [0, 1]; G in eval mode."""
        was_training = self.training
        self.eval()
        z = z.to(next(self.parameters()).device)
        images = from_model_range(self.generate_raw(z, labels))
        self.train(was_training)
        return images

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [0, 1] for z ~ N(0, I); a conditional GAN cycles 0..9 unless given labels."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        if self.conditional and labels is None:
            labels = torch.arange(n) % self.config.num_classes
        return self.generate(z, labels)


def _check_latent(z: torch.Tensor, latent_dim: int) -> None:
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"this generator takes latents of shape (B, {latent_dim}), got {tuple(z.shape)}")
