"""Denoising diffusion models: DDPM, DDIM and classifier-free guidance, for 28x28 digits.

The forward process (Ho et al. 2020, "DDPM", arXiv:2006.11239) adds Gaussian
noise in T small steps with variances beta_1..beta_T. Its marginal has a closed
form, so any x_t is one line away from the clean image x_0::

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,        eps ~ N(0, I)

A network eps_theta(x_t, t, y) learns to predict the noise eps that was added
(the "simple" loss ||eps - eps_theta||^2, a reweighted ELBO). Sampling runs the
process backwards from pure noise x_T ~ N(0, I):

* **DDPM** (ancestral sampling): one Gaussian step per t, T = 1000 network calls.
* **DDIM** (Song, Meng & Ermon 2020, arXiv:2010.02502): the same trained network,
  a non-Markovian reverse process that may skip timesteps; eta = 0 makes it
  deterministic, eta = 1 recovers DDPM's noise level. 20-50 steps suffice.
* **Classifier-free guidance** (Ho & Salimans 2022, arXiv:2207.12598): train one
  network both with the label y and (10-20% of the time) with a "null" label;
  at sampling time extrapolate ``eps = (1 + w) eps(x, y) - w eps(x, null)``.
  w = 0 is plain conditional sampling; larger w gives more typical, less
  diverse digits.

Layout of this file: the noise schedule as data (:class:`Schedule`,
``linear``/``cosine``), the math as pure functions (``q_sample``,
``predict_x0``, ``ddpm_step``, ``ddim_step``, ``guided_eps``), the network
(:class:`UNet`), and the sampling loops (:func:`sample`, :func:`sample_trajectory`).
Images inside the model live in model space [-1, 1] (``to_model_range`` takes
data there); :func:`sample` and :func:`sample_trajectory` return them in [0, 1]
like the data (``from_model_range``), so no caller rescales.

Our ``ddpm_step`` and ``ddim_step`` follow the same conventions as the
``diffusers`` schedulers (epsilon prediction, x_0 clipped to [-1, 1], the
"fixed small" DDPM variance, "leading" DDIM timestep spacing) and the tests check
them against ``DDPMScheduler.step`` / ``DDIMScheduler.step`` to 1e-5.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aigc_course.models.pixels import from_model_range, to_model_range  # noqa: F401 (re-exported)

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim", "dpm++")


# ---------------------------------------------------------------------------------------------
# The noise schedule, as data
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """A noise schedule: ``betas`` (T,) and everything derived from them.

    Index t = 0..T-1 here is the paper's t = 1..T (the convention of code, and of
    ``diffusers``). ``alphas_cumprod[t]`` is abar_t, the fraction of the signal's
    variance left at step t. The schedule and the steps' coefficients are
    float32, like ``diffusers`` computes them: near t = 0, where 1 - abar_t is
    ~1e-4, float32 rounding changes x_{t-1} by ~1e-4, which is far below the
    noise the step adds but would break a 1e-5 comparison with the reference.
    """

    kind: str
    betas: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """abar_t for (a tensor of) timesteps; abar_t = 1 for t < 0 (no noise before the first step)."""
        t = torch.as_tensor(t).long()
        ac = self.alphas_cumprod[t.clamp(min=0)]
        return torch.where(t < 0, torch.ones_like(ac), ac)

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio abar_t / (1 - abar_t) per step (falls from ~1e4 to ~0)."""
        ac = self.alphas_cumprod.double()
        return ac / (1 - ac)


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """Ho et al. 2020: betas rise linearly from 1e-4 to 0.02 over T = 1000 steps."""
    _check_T(T)
    return Schedule("linear", torch.linspace(beta_start, beta_end, T, dtype=torch.float32))


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal 2021 (arXiv:2102.09672): abar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2).

    beta_t = 1 - abar(t+1)/abar(t), capped at ``max_beta`` so the last step is
    not a division by zero. Noise is added more gently than the linear schedule
    at the start, so fewer steps are wasted on nearly pure noise at the end
    (``diffusers`` calls it "squaredcos_cap_v2").
    """
    _check_T(T)
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    return Schedule("cosine", torch.tensor(betas, dtype=torch.float32))


def make_schedule(kind: str = "linear", T: int = 1000) -> Schedule:
    """The schedule called ``kind`` ("linear" or "cosine") with ``T`` steps."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}: choose 'linear' (Ho et al. 2020) or 'cosine' "
                         "(Nichol & Dhariwal 2021)")
    return linear_schedule(T) if kind == "linear" else cosine_schedule(T)


def _check_T(T: int) -> None:
    if not isinstance(T, int) or T < 2:
        raise ValueError(f"a schedule needs T >= 2 steps, got {T!r}")


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) or scalar float64 -> broadcastable (B, 1, 1, 1) in ``like``'s dtype and device."""
    values = values.to(device=like.device, dtype=like.dtype)
    return values.reshape(-1, *([1] * (like.ndim - 1))) if values.ndim else values


# ---------------------------------------------------------------------------------------------
# The math, as pure functions
# ---------------------------------------------------------------------------------------------

def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) in one shot: sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

    ``x0`` and ``noise`` (B, C, H, W); ``t`` an int or a (B,) tensor of steps in [0, T).
    """
    t = torch.as_tensor(t)
    if (t < 0).any() or (t >= schedule.T).any():
        raise ValueError(f"timesteps must lie in [0, {schedule.T}), got {t.tolist()}")
    abar = _per_sample(schedule.abar(t), x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def predict_x0(schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int,
               clip: bool = True) -> torch.Tensor:
    """Invert q_sample with the predicted noise: x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    abar = _per_sample(schedule.abar(t), x_t)
    x0 = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
    return x0.clamp(-1, 1) if clip else x0


def ddpm_step(schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int | None = None,
              noise: torch.Tensor | None = None, clip: bool = True) -> torch.Tensor:
    """One ancestral DDPM step x_t -> x_{t_prev} (Ho et al. 2020, eqs. 6-7; t_prev = t - 1 by default).

    The posterior q(x_{t'} | x_t, x_0) is Gaussian with mean
    ``c0 * x0_hat + ct * x_t`` and variance ``(1 - abar_t') / (1 - abar_t) * beta``,
    where alpha = abar_t / abar_t' and beta = 1 - alpha (for t' = t - 1 these
    are the schedule's own alpha_t, beta_t)::

        c0 = sqrt(abar_t') * beta / (1 - abar_t)
        ct = sqrt(alpha) * (1 - abar_t') / (1 - abar_t)

    with x0_hat = predict_x0(x_t, eps) (clipped to [-1, 1]). At the last step
    (t = 0) no noise is added. ``noise`` is the N(0, I) draw (B, C, H, W);
    pass it for reproducible results.
    """
    t_prev = t - 1 if t_prev is None else t_prev
    abar_t, abar_prev = schedule.abar(t), schedule.abar(t_prev)
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    x0 = predict_x0(schedule, x_t, eps, t, clip)
    c0 = (abar_prev.sqrt() * beta / (1 - abar_t)).item()
    ct = (alpha.sqrt() * (1 - abar_prev) / (1 - abar_t)).item()
    mean = c0 * x0 + ct * x_t
    if t == 0:
        return mean
    if noise is None:
        raise ValueError("ddpm_step needs `noise` (a N(0, I) tensor shaped like x_t) for every t > 0")
    variance = max(((1 - abar_prev) / (1 - abar_t) * beta).item(), 1e-20)
    return mean + math.sqrt(variance) * noise


def ddim_step(schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int,
              eta: float = 0.0, noise: torch.Tensor | None = None, clip: bool = True) -> torch.Tensor:
    """One DDIM step x_t -> x_{t_prev} (Song et al. 2020, eq. 12); t_prev = -1 means "to x_0".

        x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps + sigma z
        sigma  = eta * sqrt((1 - abar_t') / (1 - abar_t)) * sqrt(1 - abar_t / abar_t')

    "Predict x_0, then re-noise it to level t' along the direction of the
    predicted noise". eta = 0: deterministic (an ODE-like sampler); eta = 1:
    the DDPM posterior's variance. ``noise`` z is required when eta > 0.

    With ``clip``, x0_hat is clipped to [-1, 1] and eps is re-derived from the
    clipped x0_hat, eps = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t), so that
    the pair still describes x_t (as GLIDE does; ``diffusers``' DDIM step does it
    with ``use_clipped_model_output=True``, not by default). Without that, every
    step re-noises a clipped image along an unclipped noise direction; over 20-50
    steps the mismatch piles up, and with guidance (which pushes x0_hat far out of
    range) it turned our digits into bright blobs: class accuracy 0.08 at w = 3.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    abar_t, abar_prev = schedule.abar(t), schedule.abar(t_prev)
    x0 = predict_x0(schedule, x_t, eps, t, clip)
    if clip:
        eps = (x_t - _per_sample(abar_t, x_t).sqrt() * x0) / (1 - _per_sample(abar_t, x_t)).sqrt()
    sigma = (eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()).item()
    direction = math.sqrt(max((1 - abar_prev).item() - sigma ** 2, 0.0)) * eps
    x_prev = abar_prev.sqrt().item() * x0 + direction
    if sigma > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs `noise` (a N(0, I) tensor shaped like x_t)")
        x_prev = x_prev + sigma * noise
    return x_prev


def dpm_solver_pp_step(schedule: Schedule, x_t: torch.Tensor, x0: torch.Tensor, t: int, t_prev: int,
                       previous: tuple[int, torch.Tensor] | None = None) -> torch.Tensor:
    """One DPM-Solver++(2M) step x_t -> x_{t_prev} (Lu et al. 2022, "DPM-Solver++", Algorithm 2).

    Legend: alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t = log(alpha_t / sigma_t) (half the
    log signal-to-noise ratio); x0 is the model's prediction of the clean image at t (the "data prediction").

    1) h = lambda_{t'} - lambda_t; first order (= DDIM with eta 0):
       x_{t'} = (sigma_{t'} / sigma_t) x_t - alpha_{t'} (e^{-h} - 1) x0
    2) with the previous step's prediction (t_p, x0_p) given as ``previous``, correct x0 by the slope of
       the predictions in lambda (the multistep "midpoint" form): r = h_p / h with h_p = lambda_t - lambda_{t_p},
       D = x0 + (x0 - x0_p) / (2 r), and use D in place of x0 in 1).
    t_prev = -1 means "to x_0": sigma = 0 there, and the step returns x0 itself.
    Matches ``diffusers``' ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)``.
    """
    if t_prev < 0:
        return x0
    abar_t, abar_prev = schedule.abar(t).double(), schedule.abar(t_prev).double()
    alpha_prev, sigma_t, sigma_prev = abar_prev.sqrt(), (1 - abar_t).sqrt(), (1 - abar_prev).sqrt()
    lam = lambda a: 0.5 * (a.log() - (1 - a).log())  # noqa: E731  (lambda_t from abar_t)
    h = lam(abar_prev) - lam(abar_t)
    d = x0
    if previous is not None:
        t_p, x0_p = previous
        r = (lam(abar_t) - lam(schedule.abar(t_p).double())) / h
        d = x0 + (x0 - x0_p) / (2 * r).item()
    return (sigma_prev / sigma_t).item() * x_t - (alpha_prev * torch.expm1(-h)).item() * d


def guided_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6): (1 + w) eps(x, y) - w eps(x, null).

    w = 0 is the conditional model; ``diffusers``' ``guidance_scale`` is 1 + w.
    """
    return eps_cond + w * (eps_cond - eps_uncond)


def sampling_timesteps(T: int, steps: int) -> list[int]:
    """The ``steps`` timesteps a sampler visits, high to low, spaced T // steps apart from 0.

    This is the "leading" spacing of DDIM and of ``diffusers``: 1000 steps of
    1000 visit 999..0; 50 visit 980, 960, ..., 0.
    """
    if not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in [1, {T}] (the model was trained with T = {T}), got {steps!r}")
    stride = T // steps
    return list(range(0, steps * stride, stride))[::-1]


# ---------------------------------------------------------------------------------------------
# The network: a small U-Net with time and class embeddings
# ---------------------------------------------------------------------------------------------

@dataclass
class UNetConfig:
    """A U-Net for 28x28 digits: 28 -> 14 -> 7 and back, attention at 7x7.

    ``channels`` per resolution (28, 14, 7); ``null_label`` (= 10) is the extra
    class embedding used for "no label" (classifier-free guidance);
    ``schedule``/``timesteps`` record the noise schedule the model was trained with.
    """

    channels: tuple[int, ...] = (32, 64, 64)
    time_dim: int = 128
    attention_heads: int = 4
    dropout: float = 0.1
    num_classes: int = NUM_CLASSES
    schedule: str = "linear"
    timesteps: int = 1000

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if len(self.channels) != 3 or min(self.channels) < 8 or any(c % 8 for c in self.channels):
            raise ValueError(f"channels must be three multiples of 8 (for 28, 14 and 7 pixels), got {self.channels}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    @property
    def null_label(self) -> int:
        return self.num_classes


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (B,) -> (B, dim), as the Transformer's positions (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the (time + class) embedding added in between; residual skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.block1 = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.block2 = nn.Sequential(_norm(c_out), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, padding=1))
        nn.init.zeros_(self.block2[-1].weight)  # each block starts as the identity
        nn.init.zeros_(self.block2[-1].bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.block2(h)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map (used at 7x7: 49 tokens)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(h.transpose(-1, -2).reshape(B, C, H, W))   # (B, heads, HW, C/h) -> (B, C, H, W)


class UNet(nn.Module):
    """eps_theta(x_t, t, y): (B, 1, 28, 28) noisy images, (B,) steps, (B,) labels -> (B, 1, 28, 28) noise.

    Down path 28 -> 14 -> 7 with one residual block per level (attention at 7),
    a middle of res-attention-res at 7x7, and an up path that concatenates the
    down path's features (the U's skip connections). The timestep's sinusoidal
    embedding and the label's learned embedding (index ``null_label`` = "no
    label") are summed and fed to every residual block.
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = c = config or UNetConfig()
        c1, c2, c3 = c.channels
        e = c.time_dim
        self.time_mlp = nn.Sequential(nn.Linear(c1, e), nn.SiLU(), nn.Linear(e, e))
        self.label_emb = nn.Embedding(c.num_classes + 1, e)
        self.inp = nn.Conv2d(1, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, e, c.dropout)                                 # 28x28
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)                      # -> 14x14
        self.down2 = ResBlock(c1, c2, e, c.dropout)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)                      # -> 7x7
        self.down3 = ResBlock(c2, c3, e, c.dropout)
        self.down3_attn = SelfAttention(c3, c.attention_heads)
        self.mid1 = ResBlock(c3, c3, e, c.dropout)
        self.mid_attn = SelfAttention(c3, c.attention_heads)
        self.mid2 = ResBlock(c3, c3, e, c.dropout)
        self.up3 = ResBlock(c3 + c3, c3, e, c.dropout)                              # 7x7
        self.up3_attn = SelfAttention(c3, c.attention_heads)
        self.unpool2 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c3, c3, 3, padding=1))
        self.up2 = ResBlock(c3 + c2, c2, e, c.dropout)                              # 14x14
        self.unpool1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c2, 3, padding=1))
        self.up1 = ResBlock(c2 + c1, c1, e, c.dropout)                              # 28x28
        self.out = nn.Sequential(_norm(c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def schedule(self) -> Schedule:
        return make_schedule(self.config.schedule, self.config.timesteps)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"the U-Net takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        if y is None:
            y = torch.full((len(x),), self.config.null_label, device=x.device, dtype=torch.long)
        emb = self.time_mlp(timestep_embedding(t, self.config.channels[0])) + self.label_emb(y)   # (B, e)
        h1 = self.down1(self.inp(x), emb)                                   # (B, c1, 28, 28)
        h2 = self.down2(self.pool1(h1), emb)                                # (B, c2, 14, 14)
        h3 = self.down3_attn(self.down3(self.pool2(h2), emb))               # (B, c3, 7, 7)
        h = self.mid2(self.mid_attn(self.mid1(h3, emb)), emb)
        h = self.up3_attn(self.up3(torch.cat([h, h3], 1), emb))
        h = self.up2(torch.cat([self.unpool2(h), h2], 1), emb)              # (B, c2, 14, 14)
        h = self.up1(torch.cat([self.unpool1(h), h1], 1), emb)              # (B, c1, 28, 28)
        return self.out(h)


def drop_labels(y: torch.Tensor, p: float, null_label: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_label`` with probability ``p`` (training for classifier-free guidance)."""
    drop = torch.rand(y.shape, generator=generator, device="cpu").to(y.device) < p
    return torch.where(drop, torch.full_like(y, null_label), y)


def diffusion_loss(model: UNet, x0: torch.Tensor, y: torch.Tensor | None, schedule: Schedule | None = None,
                   label_dropout: float = 0.0) -> torch.Tensor:
    """The "simple" DDPM objective: E_{t, eps} ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1-abar_t) eps, t, y)||^2.

    ``x0`` (B, 1, 28, 28) in [-1, 1]; t ~ Uniform{0..T-1}; labels are dropped
    to the null token with probability ``label_dropout``.
    """
    schedule = schedule or model.schedule
    t = torch.randint(0, schedule.T, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    x_t = q_sample(schedule, x0, t.cpu(), noise)
    if y is not None and label_dropout > 0:
        y = drop_labels(y, label_dropout, model.config.null_label)
    return F.mse_loss(model(x_t, t, y), noise)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

def _labels(label, n: int, model: UNet, device) -> torch.Tensor | None:
    """None (unconditional), one digit for all n, or a sequence of n digits -> (n,) long tensor."""
    if label is None:
        return None
    y = torch.as_tensor(label, dtype=torch.long)
    y = y.expand(n).clone() if y.ndim == 0 else y
    if y.shape != (n,):
        raise ValueError(f"give one label or {n} labels, got shape {tuple(y.shape)}")
    if ((y < 0) | (y >= model.config.num_classes)).any():
        raise ValueError(f"labels must be digits 0..{model.config.num_classes - 1} (or None for unconditional), "
                         f"got {sorted(set(y.tolist()))}")
    return y.to(device)


@torch.no_grad()
def sample(model: UNet, n: int, label=None, *, sampler: str = "ddim", steps: int = 50, guidance: float = 0.0,
           eta: float = 0.0, generator: torch.Generator | None = None, x_T: torch.Tensor | None = None,
           callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
           progress: bool = False, timesteps: list[int] | None = None) -> torch.Tensor:
    """Draw ``n`` digits (n, 1, 28, 28) in [0, 1] with DDPM or DDIM, optionally guided.

    ``label``: None (unconditional), a digit 0..9, or n digits. ``guidance`` w
    (Ho & Salimans): 0 = plain conditional; > 0 runs the conditional and the
    unconditional model in one batch of 2n and extrapolates. ``sampler``:
    "ddpm" (ancestral; use steps = 1000 for the real thing) or "ddim" (``eta``
    0 = deterministic). ``callback(t, x_t, x0_hat)`` sees every step, in
    model space [-1, 1] (:func:`sample_trajectory` records them in [0, 1]).
    All random numbers come from ``generator`` (CPU), so a seed fixes the
    result on any device. On a CPU the model's weights are switched to the
    ``channels_last`` memory layout first (same values; faster convolutions).
    ``sampler="dpm++"`` is DPM-Solver++(2M) (:func:`dpm_solver_pp_step`). ``timesteps`` (decreasing) replaces
    the default leading spacing of ``steps`` steps (:func:`sampling_timesteps`) by your own.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}: choose 'ddpm', 'ddim' or 'dpm++'")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if guidance < 0:
        raise ValueError(f"guidance w must be >= 0, got {guidance}")
    model.eval()
    schedule, device = model.schedule, next(model.parameters()).device
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    if device.type == "cpu":
        # oneDNN's CPU convolutions run ~1.8x faster on (B, H, W, C)-ordered tensors (measured at batch 250 on a
        # 2-core Xeon): switch the weights once (same values and shapes, only the strides change) and feed x so
        model.to(memory_format=torch.channels_last)
    if timesteps is None:
        timesteps = sampling_timesteps(schedule.T, steps)
    elif not timesteps or any(not 0 <= a < schedule.T for a in timesteps) or list(timesteps) != sorted(timesteps, reverse=True):
        raise ValueError(f"timesteps must be decreasing integers in [0, {schedule.T - 1}], got {timesteps}")
    timesteps, steps = [int(a) for a in timesteps], len(timesteps)
    y = _labels(label, n, model, device)
    guided = y is not None and guidance > 0
    if guided:
        y_in = torch.cat([y, torch.full_like(y, model.config.null_label)])
    x = torch.randn(n, *IMAGE_SHAPE, generator=generator) if x_T is None else x_T.clone().cpu()
    x = x.to(device).contiguous(memory_format=memory_format)
    previous = None  # DPM-Solver++: the last step's (t, x0_hat)
    for i, t in enumerate(tqdm(timesteps, desc=f"{sampler}-{steps}", disable=not progress)):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        if guided:
            eps_c, eps_u = model(torch.cat([x, x]), torch.full((2 * n,), t, device=device), y_in).chunk(2)
            eps = guided_eps(eps_c, eps_u, guidance)
        else:
            eps = model(x, torch.full((n,), t, device=device), y)
        noise = torch.randn(x.shape, generator=generator).to(device) if t_prev >= 0 else None
        if callback is not None:
            callback(t, x, predict_x0(schedule, x, eps, t))
        if sampler == "ddpm":
            x = ddpm_step(schedule, x, eps, t, t_prev, noise=noise)
        elif sampler == "dpm++":
            x0 = predict_x0(schedule, x, eps, t, clip=False)
            last = t_prev < 0 or (steps < 15 and i + 2 == len(timesteps))  # first order at the end, as diffusers
            x = dpm_solver_pp_step(schedule, x, x0, t, t_prev, previous=None if last else previous)
            previous = (t, x0)
        else:
            x = ddim_step(schedule, x, eps, t, t_prev, eta=eta, noise=noise if eta > 0 else None)
    return from_model_range(x).cpu()


@dataclass
class Trajectory:
    """One sampling run, step by step, in [0, 1]: ``xs[i]`` is x_t and ``x0s[i]`` the model's x0_hat at
    ``timesteps[i]``; the last entry (t = -1) is the final sample in both lists. Images (n, 1, 28, 28) on the CPU."""

    timesteps: list[int]
    xs: list[torch.Tensor]
    x0s: list[torch.Tensor]


@torch.no_grad()
def sample_trajectory(model: UNet, n: int, label=None, **kwargs) -> Trajectory:
    """Run :func:`sample` (same arguments) and keep x_t and x0_hat of every step, in [0, 1] like the data.

    Early on x_t is nearly pure noise while x0_hat is already a blurry average
    digit; both sharpen as t falls (the timestep scrubber of lesson 04 shows it).
    """
    if "callback" in kwargs:
        raise ValueError("sample_trajectory records every step itself: leave out callback")
    steps = Trajectory([], [], [])

    def record(t: int, x: torch.Tensor, x0: torch.Tensor) -> None:
        steps.timesteps.append(t)
        steps.xs.append(from_model_range(x).cpu())
        steps.x0s.append(from_model_range(x0).cpu())

    final = sample(model, n, label, callback=record, **kwargs)
    steps.timesteps.append(-1)
    steps.xs.append(final)
    steps.x0s.append(final)
    return steps
