"""Variational autoencoders (Kingma & Welling 2013, arXiv:1312.6114).

A VAE has an encoder q(z|x) = N(mu(x), diag sigma^2(x)), a prior p(z) = N(0, I)
and a decoder p(x|z), here Bernoulli over the 784 pixels (the decoder outputs
logits). It is trained by maximising the evidence lower bound (ELBO)::

    log p(x) >= ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))

Everything below is written per example and in nats. The math lives in pure
functions (``reparameterize``, ``kl_to_standard_normal``, ``elbo``,
``importance_weighted_log_likelihood``); the ``VAE`` module only maps x to
(mu, log sigma^2) and z to logits (``decode``, for the loss) or to grey values
in [0, 1] (``decode_mean``, for pictures).

Note on the likelihood: the digits are grey values in [0, 1] and we score them
with the Bernoulli log-likelihood (binary cross-entropy), like the PyTorch
examples' VAE. That is a fine training loss but not a normalised density for
grey values, so our nats are comparable with each other, not with papers that
report NLL on *binarised* MNIST (about 80-90 nats).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28


@dataclass
class VAEConfig:
    """``arch``: "mlp" (fully connected) or "conv" (two strided convolutions each way)."""

    arch: str = "mlp"
    latent_dim: int = 2
    hidden: int = 512

    def __post_init__(self) -> None:
        if self.arch not in ("mlp", "conv"):
            raise ValueError(f"arch must be 'mlp' or 'conv', got {self.arch!r}")
        if self.latent_dim < 1 or self.hidden < 2:
            raise ValueError("latent_dim must be >= 1 and hidden >= 2")


def _mlp_encoder(c: VAEConfig) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, c.hidden), nn.SiLU(),
                         nn.Linear(c.hidden, c.hidden // 2), nn.SiLU(),
                         nn.Linear(c.hidden // 2, 2 * c.latent_dim))


def _mlp_decoder(c: VAEConfig) -> nn.Module:
    return nn.Sequential(nn.Linear(c.latent_dim, c.hidden // 2), nn.SiLU(),
                         nn.Linear(c.hidden // 2, c.hidden), nn.SiLU(),
                         nn.Linear(c.hidden, PIXELS), nn.Unflatten(1, IMAGE_SHAPE))


def _conv_encoder(c: VAEConfig) -> nn.Module:
    return nn.Sequential(                                          # (B, 1, 28, 28)
        nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.SiLU(),       # (B, 32, 14, 14)
        nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.SiLU(),      # (B, 64, 7, 7)
        nn.Flatten(), nn.Linear(64 * 7 * 7, c.hidden), nn.SiLU(),  # (B, hidden)
        nn.Linear(c.hidden, 2 * c.latent_dim))                     # (B, 2 * latent)


def _conv_decoder(c: VAEConfig) -> nn.Module:
    return nn.Sequential(                                          # (B, latent)
        nn.Linear(c.latent_dim, c.hidden), nn.SiLU(),
        nn.Linear(c.hidden, 64 * 7 * 7), nn.SiLU(), nn.Unflatten(1, (64, 7, 7)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.SiLU(),  # (B, 32, 14, 14)
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1))              # (B, 1, 28, 28) logits


class VAE(nn.Module):
    """Encoder x -> (mu, logvar) and decoder z -> Bernoulli logits, for 28x28 digits."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config or VAEConfig()
        build = {"mlp": (_mlp_encoder, _mlp_decoder), "conv": (_conv_encoder, _conv_decoder)}[self.config.arch]
        self.encoder, self.decoder = build[0](self.config), build[1](self.config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) in [0, 1] -> mu, logvar, each (B, latent_dim)."""
        if x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"the VAE encodes images of shape (B, 1, 28, 28), got {tuple(x.shape)}: "
                             "add the channel axis with x.unsqueeze(1) or resize to 28x28")
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> pixel **logits** (B, 1, 28, 28), for the loss; images come from ``decode_mean``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"this VAE decodes latents of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> the mean of p(x|z), grey values (B, 1, 28, 28) in [0, 1]: sigmoid(logits).

        What a VAE "draws" for z (the course's image convention, see :mod:`aigc_course.models.pixels`);
        differentiable, so it also serves latent-space optimisation.
        """
        return torch.sigmoid(self.decode(z))

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        """Encode, sample z with the reparameterisation trick, decode: (logits, mu, logvar)."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [0, 1]: decoder means for z ~ N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.decode_mean(z)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2).

    Sampling this way keeps z a differentiable function of (mu, logvar), so the
    gradient of the ELBO flows into the encoder.
    """
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example, in nats: shape (B,).

    KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = sum_pixels [x log p + (1 - x) log(1 - p)], p = sigmoid(logits): shape (B,)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


@dataclass
class ELBOTerms:
    """Per-batch means, in nats per image: ``loss`` = -(recon - beta * kl)."""

    loss: torch.Tensor
    recon: torch.Tensor  # E_q[log p(x|z)], one sample
    kl: torch.Tensor


def elbo(model: VAE, x: torch.Tensor, beta: float = 1.0, eps: torch.Tensor | None = None) -> ELBOTerms:
    """The (beta-weighted) negative ELBO averaged over the batch, with its two terms.

    beta = 1 is the true ELBO; beta > 1 is the beta-VAE of Higgins et al. 2017.
    """
    logits, mu, logvar = model(x, eps)
    recon = bernoulli_log_likelihood(logits, x).mean()
    kl = kl_to_standard_normal(mu, logvar).mean()
    return ELBOTerms(loss=-(recon - beta * kl), recon=recon, kl=kl)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


@torch.no_grad()
def importance_weighted_log_likelihood(model: VAE, x: torch.Tensor, k: int = 500,
                                       chunk: int = 250, generator: torch.Generator | None = None,
                                       ) -> torch.Tensor:
    """Estimate log p(x) per image with k importance samples from q(z|x) (Burda et al. 2015).

        log p(x) ~= logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k

    A lower bound in expectation that tightens as k grows (k = 1 is the ELBO).
    Returns a tensor (B,) in nats; ``chunk`` bounds memory (samples per pass).
    """
    mu, logvar = model.encode(x)
    log_w = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        eps = torch.randn((n, *mu.shape), generator=generator).to(mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps                     # (n, B, D)
        logits = model.decode(z.flatten(0, 1))                      # (n*B, 1, 28, 28)
        log_px_z = bernoulli_log_likelihood(logits, x.repeat(n, 1, 1, 1)).view(n, -1)
        log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = _log_normal(z, mu, logvar)
        log_w.append(log_px_z + log_pz - log_qz)
    return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)
