"""Latent diffusion with cross-attention to text: Stable Diffusion's recipe for 28x28 digits.

Rombach et al. 2022 ("High-Resolution Image Synthesis with Latent Diffusion
Models", arXiv:2112.10752) make three changes to the pixel-space diffusion of
lesson 04, and this file makes the same three at our scale:

1. **An autoencoder with a spatial latent** (:class:`LatentAutoencoder`):
   28x28x1 pixels -> a 4x7x7 latent (196 numbers, 4x fewer) and back. It is a
   VAE (lesson 01's ``reparameterize`` and KL) with a *small* KL weight, so it
   reconstructs sharply; the diffusion model, not the VAE prior, generates.
   Latents are multiplied by ``scale`` = 1 / their standard deviation on the
   training digits (Stable Diffusion's 0.18215 plays the same role).
2. **A U-Net over latents whose blocks cross-attend to the prompt's tokens**
   (:class:`TextUNet`, :class:`CrossAttention`): queries come from the 49 latent
   positions, keys and values from the text encoder's token states.
3. **Classifier-free guidance on the empty prompt**: training replaces ~10% of
   the captions by "" (the null prompt); sampling extrapolates from the
   prediction for the negative prompt ("" by default) towards the prompt's.

Sampling reuses lesson 04's DDIM step (:func:`aigc_course.models.diffusion.ddim_step`)
and guidance formula; :func:`denoise` also starts part-way (SDEdit, image-to-image)
and keeps a masked region of a known latent (inpainting).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.models.diffusion import (ResBlock, Schedule, ddim_step, guided_eps, make_schedule, predict_x0,
                                          q_sample, sampling_timesteps, timestep_embedding)
from aigc_course.models.vae import kl_to_standard_normal, reparameterize

LATENT_CLIP = 3.0   # |x0_hat| bound in latent space (latents are scaled to unit variance), as [-1, 1] is for pixels


# ---------------------------------------------------------------------------------------------
# 1. The autoencoder: 28x28 pixels <-> 4x7x7 latents
# ---------------------------------------------------------------------------------------------

@dataclass
class AutoencoderConfig:
    channels: tuple[int, ...] = (16, 32)
    latent_channels: int = 4
    scale: float = 1.0          # set after training: 1 / std of the training latents

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)


class LatentAutoencoder(nn.Module):
    """A convolutional VAE with a spatial latent: (B, 1, 28, 28) <-> (B, 4, 7, 7)."""

    def __init__(self, config: AutoencoderConfig | None = None):
        super().__init__()
        self.config = c = config or AutoencoderConfig()
        c1, c2 = c.channels
        z = c.latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 4, stride=2, padding=1), nn.SiLU(),            # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.SiLU(),            # (B, c2, 7, 7)
            nn.Conv2d(c2, 2 * z, 3, padding=1))                              # (B, 2z, 7, 7): mu, logvar
        self.decoder = nn.Sequential(
            nn.Conv2d(z, c2, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.SiLU(),   # (B, c1, 14, 14)
            nn.ConvTranspose2d(c1, c1, 4, stride=2, padding=1), nn.SiLU(),   # (B, c1, 28, 28)
            nn.Conv2d(c1, 1, 3, padding=1))                                  # logits

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.config.latent_channels, 7, 7)

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) in [0, 1] -> mu, logvar (B, 4, 7, 7) of q(z | x), unscaled."""
        if x.shape[1:] != (1, 28, 28):
            raise ValueError(f"the autoencoder encodes digits (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.encoder(x).chunk(2, dim=1)

    def loss(self, x: torch.Tensor, kl_weight: float) -> tuple[torch.Tensor, dict]:
        """Per-image reconstruction loss (Bernoulli, nats) + ``kl_weight`` * KL, averaged over the batch."""
        mu, logvar = self.moments(x)
        logits = self.decoder(reparameterize(mu, logvar))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = kl_to_standard_normal(mu.flatten(1), logvar.flatten(1))
        return (rec + kl_weight * kl).mean(), {"reconstruction": rec.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Digits -> the scaled latent the diffusion model works on: ``scale * mu`` (B, 4, 7, 7)."""
        return self.moments(x)[0] * self.config.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, 4, 7, 7) -> digits (B, 1, 28, 28) in [0, 1]."""
        if z.shape[1:] != self.latent_shape:
            raise ValueError(f"the decoder takes latents {self.latent_shape}, got {tuple(z.shape[1:])}")
        return torch.sigmoid(self.decoder(z / self.config.scale))


# ---------------------------------------------------------------------------------------------
# 2. Cross-attention and the text-conditioned U-Net
# ---------------------------------------------------------------------------------------------

class CrossAttention(nn.Module):
    """Multi-head attention from ``x`` (B, N, C) to a ``context`` (B, L, D): queries from x, keys/values from it.

        Q = x W_q,  K = c W_k,  V = c W_v          (per head: C / heads columns)
        out = softmax(Q K^T / sqrt(C / heads) + mask) V,  heads concatenated, then W_o (+ bias)

    The layout of ``diffusers``' ``Attention(query_dim=C, cross_attention_dim=D, heads=h, dim_head=C // h)``
    (``to_q``, ``to_k``, ``to_v`` without bias, ``to_out`` with), so its weights load one to one
    (``tests/test_text2img.py`` checks the outputs agree to 1e-5). ``keep`` (B, L) bool marks
    the context tokens that may be attended to (False: padding).
    """

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:                 # (B, n, C) -> (B, heads, n, C / heads)
            return t.reshape(B, -1, h, C // h).transpose(1, 2)
        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        mask = None if keep is None else keep[:, None, None, :]      # (B, 1, 1, L): broadcast over heads, queries
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N, C / heads)
        return self.to_out(out.transpose(1, 2).reshape(B, N, C))


class CrossAttentionBlock(nn.Module):
    """Stable Diffusion's "spatial transformer", small: each position reads the prompt, then an MLP.

    (B, C, H, W) -> tokens (B, HW, C) -> x + CrossAttention(LN(x), text) -> x + MLP(LN(x)) -> (B, C, H, W).
    The last layers start at zero, so a new block begins as the identity.
    """

    def __init__(self, channels: int, context_dim: int, heads: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.ln1, self.ln2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn = CrossAttention(channels, context_dim, heads)
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))
        for layer in (self.attn.to_out, self.mlp[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        B, C, H, W = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)                   # (B, HW, C)
        t = t + self.attn(self.ln1(t), context, keep)
        t = t + self.mlp(self.ln2(t))
        return x + t.transpose(1, 2).reshape(B, C, H, W)


@dataclass
class TextUNetConfig:
    """A text-conditioned U-Net. ``channels`` per level (each level halves the side, rounding up);
    ``attention`` per level: cross-attention there or not. The default is the latent model (4x7x7: levels
    at 7 and 4); ``in_channels=1, size=28`` with three levels is the pixel-space model of the benchmark.
    ``autoencoder``/``clip`` name the checkpoints the model was trained with (None: pixel space)."""

    in_channels: int = 4
    size: int = 7
    channels: tuple[int, ...] = (48, 64)
    attention: tuple[bool, ...] = (True, True)
    context_dim: int = 64
    heads: int = 4
    time_dim: int = 128
    schedule: str = "linear"
    timesteps: int = 1000
    autoencoder: str | None = "t2i_autoencoder"
    clip: str = "t2i_clip"

    def __post_init__(self) -> None:
        self.channels, self.attention = tuple(self.channels), tuple(self.attention)
        if len(self.channels) != len(self.attention) or any(c % 8 for c in self.channels):
            raise ValueError(f"give one multiple of 8 channels and one attention flag per level, got "
                             f"{self.channels} and {self.attention}")


class TextUNet(nn.Module):
    """eps_theta(x_t, t, text): (B, C, S, S) noisy inputs, (B,) steps, token states (B, L, D) -> noise."""

    def __init__(self, config: TextUNetConfig | None = None):
        super().__init__()
        self.config = c = config or TextUNetConfig()
        ch, e = c.channels, c.time_dim
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], e), nn.SiLU(), nn.Linear(e, e))
        self.inp = nn.Conv2d(c.in_channels, ch[0], 3, padding=1)

        def attn(i: int) -> nn.Module | None:
            return CrossAttentionBlock(ch[i], c.context_dim, c.heads) if c.attention[i] else None
        self.down = nn.ModuleList(ResBlock(ch[max(i - 1, 0)], ch[i], e, 0.0) for i in range(len(ch)))
        self.down_attn = nn.ModuleList(attn(i) or nn.Identity() for i in range(len(ch)))
        self.downsample = nn.ModuleList(nn.Conv2d(ch[i], ch[i], 3, stride=2, padding=1) for i in range(len(ch) - 1))
        self.mid1, self.mid2 = ResBlock(ch[-1], ch[-1], e, 0.0), ResBlock(ch[-1], ch[-1], e, 0.0)
        self.mid_attn = CrossAttentionBlock(ch[-1], c.context_dim, c.heads)
        self.up = nn.ModuleList(ResBlock(2 * ch[i], ch[i], e, 0.0) for i in range(len(ch)))
        self.up_attn = nn.ModuleList(attn(i) or nn.Identity() for i in range(len(ch)))
        self.upsample = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 3, padding=1) for i in range(len(ch) - 1))
        self.out = nn.Sequential(nn.GroupNorm(8, ch[0]), nn.SiLU(), nn.Conv2d(ch[0], c.in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def schedule(self) -> Schedule:
        return make_schedule(self.config.schedule, self.config.timesteps)

    def _attend(self, block: nn.Module, h, context, keep):
        return h if isinstance(block, nn.Identity) else block(h, context, keep)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if x.shape[1:] != (c.in_channels, c.size, c.size):
            raise ValueError(f"this U-Net takes inputs (B, {c.in_channels}, {c.size}, {c.size}), got {tuple(x.shape)}")
        emb = self.time_mlp(timestep_embedding(t, c.channels[0]))          # (B, time_dim)
        h, skips = self.inp(x), []
        for i, (res, block) in enumerate(zip(self.down, self.down_attn)):
            h = self._attend(block, res(h, emb), context, keep)
            skips.append(h)                                                 # level i: (B, ch[i], S_i, S_i)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb), context, keep), emb)
        for i in reversed(range(len(self.up))):
            if i < len(self.upsample):                                      # back to level i's side (7 from 4)
                h = self.upsample[i](F.interpolate(h, size=skips[i].shape[-2:], mode="nearest"))
            h = self._attend(self.up_attn[i], self.up[i](torch.cat([h, skips[i]], 1), emb), context, keep)
        return self.out(h)


def drop_captions(ids: torch.Tensor, null_ids: torch.Tensor, p: float) -> torch.Tensor:
    """Replace each prompt (row of ids) by the null prompt with probability ``p`` (for classifier-free guidance)."""
    drop = torch.rand(len(ids), device=ids.device) < p
    return torch.where(drop[:, None], null_ids.to(ids.device).expand_as(ids), ids)


def text_diffusion_loss(model: TextUNet, x0: torch.Tensor, context: torch.Tensor,
                        keep: torch.Tensor | None) -> torch.Tensor:
    """Lesson 04's simple loss ||eps - eps_theta(x_t, t, text)||^2, on latents (or pixels) ``x0``."""
    schedule = model.schedule
    t = torch.randint(0, schedule.T, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    x_t = q_sample(schedule, x0, t.cpu(), noise)
    return F.mse_loss(model(x_t, t, context, keep), noise)


# ---------------------------------------------------------------------------------------------
# 3. Sampling: DDIM with guidance, negative prompts, SDEdit and inpainting
# ---------------------------------------------------------------------------------------------

@dataclass
class Condition:
    """The text a U-Net reads: token states (B, L, D) and which tokens are real (B, L)."""

    states: torch.Tensor
    keep: torch.Tensor

    def repeat(self, n: int) -> "Condition":
        """One prompt (1, L, D) for n samples, or n prompts as they are."""
        if len(self.states) == n:
            return self
        if len(self.states) != 1:
            raise ValueError(f"give one prompt or {n} prompts, got {len(self.states)}")
        return Condition(self.states.expand(n, -1, -1), self.keep.expand(n, -1))


def sdedit_start(schedule: Schedule, x0: torch.Tensor, strength: float, steps: int,
                 noise: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """SDEdit (Meng et al. 2022, arXiv:2108.01073): noise a clean x0 part-way, to the level the sampler resumes at.

    Of the ``steps`` DDIM timesteps, keep the last ``round(strength * steps)`` (strength 1: all of them, a
    fresh sample; 0.5: start half-way down); return (x_t at the first kept timestep, the kept timesteps).
    """
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    timesteps = sampling_timesteps(schedule.T, steps)
    kept = timesteps[len(timesteps) - max(1, round(strength * steps)):]
    return q_sample(schedule, x0, kept[0], noise), kept


@torch.no_grad()
def denoise(model: TextUNet, x: torch.Tensor, timesteps: list[int], cond: Condition, uncond: Condition,
            guidance: float = 0.0, clip: float | None = LATENT_CLIP, known: torch.Tensor | None = None,
            mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
            callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Run DDIM (eta = 0) from ``x`` at ``timesteps[0]`` down to x_0, guided; returns x_0.

    * guidance w: eps = (1 + w) eps(x, prompt) - w eps(x, negative); ``uncond`` is the negative (or empty) prompt.
    * ``clip``: bound |x0_hat| (and re-derive eps from the bounded x0_hat, as lesson 04's ``ddim_step`` does).
    * inpainting: where ``mask`` (B or 1, 1, S, S) is 0, replace x_{t'} by the ``known`` clean latent noised to
      t' after every step, so only the masked region (1) is generated and it is generated to fit the rest
      (the "blended" inpainting of Avrahami et al. 2022 and of non-inpainting Stable Diffusion pipelines).
    """
    schedule, device = model.schedule, x.device
    n = len(x)
    both = Condition(torch.cat([cond.repeat(n).states, uncond.repeat(n).states]),
                     torch.cat([cond.repeat(n).keep, uncond.repeat(n).keep]))
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        if guidance > 0:
            eps_c, eps_u = model(torch.cat([x, x]), torch.full((2 * n,), t, device=device), both.states,
                                 both.keep).chunk(2)
            eps = guided_eps(eps_c, eps_u, guidance)
        else:
            c = cond.repeat(n)
            eps = model(x, torch.full((n,), t, device=device), c.states, c.keep)
        if clip is not None:                        # bound x0_hat, then the eps that goes with it
            abar = schedule.abar(t).item()
            x0 = predict_x0(schedule, x, eps, t, clip=False).clamp(-clip, clip)
            eps = (x - abar ** 0.5 * x0) / (1 - abar) ** 0.5
        x = ddim_step(schedule, x, eps, t, t_prev, clip=False)
        if mask is not None and known is not None:
            noise = torch.randn(x.shape, generator=generator).to(device)
            known_t = known if t_prev < 0 else q_sample(schedule, known, t_prev, noise)
            x = mask * x + (1 - mask) * known_t
        if callback is not None:
            callback(t, x)
    return x
