"""Responsible AIGC in code: detecting generated images, and watermarking images and text.

Three tools that lesson 07 measures rather than just describes:

* **Everyday post-processing** (:func:`gaussian_blur`, :func:`add_noise`,
  :func:`jpeg`): what an image goes through when it is shared, and what
  detectors and watermarks must survive.
* **A detector** (:func:`train_detector`): a small CNN trained to tell real
  digits from one generator's samples. Its accuracy says how distinguishable
  *that* generator is, on *these* images, for a detector that has seen it.
* **Watermarks**: :class:`ImageWatermark`, a keyed spread-spectrum pattern
  added to mid-frequency DCT coefficients (Cox et al. 1997), found again by
  correlation; and :class:`TextWatermark`, the "green list" watermark of
  Kirchenbauer et al. 2023: the previous token seeds a split of the vocabulary,
  generation nudges the logits of the green half up by ``delta``, and a
  detector who knows the key counts green tokens and reports a z-score.

Both watermarks report a z-score, a number that is about N(0, 1) for content
without the mark, so a threshold of 4 gives a false-positive rate near 3e-5 in
theory; the lesson measures it.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from aigc_course.models.classifier import ClassifierConfig, DigitClassifier
from aigc_course.train import History, fit

# ---------------------------------------------------------------------------
# Post-processing: images are (N, 1, H, W) floats in [0, 1]
# ---------------------------------------------------------------------------


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected greyscale images of shape (N, 1, H, W), got {tuple(images.shape)}")
    return images.float()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur with a separable Gaussian kernel of standard deviation ``sigma`` pixels (reflect padding)."""
    images = _check_images(images)
    if sigma <= 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    return F.conv2d(out, kernel.view(1, 1, -1, 1))


def add_noise(images: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """Add Gaussian pixel noise of standard deviation ``std`` and clip to [0, 1]."""
    images = _check_images(images)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return (images + std * noise).clamp(0, 1)


def jpeg(images: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """Round-trip every image through JPEG at ``quality`` (1-95) with Pillow."""
    images = _check_images(images)
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be between 1 and 95, got {quality}")
    out = []
    for image in quantise(images).squeeze(1).numpy():
        buffer = io.BytesIO()
        Image.fromarray((image * 255).round().astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255)
    return torch.from_numpy(np.stack(out)).unsqueeze(1)


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to 8-bit grey levels, as saving a PNG would."""
    return (images.clamp(0, 1) * 255).round() / 255


PERTURBATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: quantise(x),
    "blur (sigma 0.5 px)": lambda x: quantise(gaussian_blur(x, 0.5)),
    "noise (std 0.05)": lambda x: quantise(add_noise(x, 0.05)),
    "JPEG (quality 75)": lambda x: jpeg(x, 75),
    "JPEG (quality 50)": lambda x: jpeg(x, 50),
}
"""The post-processing the lesson applies before detection, by name."""

# ---------------------------------------------------------------------------
# Detecting generated images
# ---------------------------------------------------------------------------


def train_detector(real: torch.Tensor, fake: torch.Tensor, *, epochs: int = 3, batch_size: int = 128,
                   lr: float = 1e-3, seed: int = 0, progress: bool = False) -> tuple[DigitClassifier, History]:
    """Train a small CNN to output logit 1 for generated images and 0 for real ones.

    It is the course's digit-classifier architecture with two outputs instead of
    ten (only logits 0 and 1 are used). Balance ``real`` and ``fake`` yourself.
    """
    real, fake = _check_images(real), _check_images(fake)
    torch.manual_seed(seed)
    model = DigitClassifier(ClassifierConfig(channels=16, features=64))
    model.head = torch.nn.Linear(model.config.features, 2)
    labels = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))]).long()
    loader = DataLoader(TensorDataset(torch.cat([real, fake]), labels), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))

    def step(model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y), {}
    history = fit(model, step, loader, epochs=epochs, lr=lr, progress=progress)
    return model, history


@torch.no_grad()
def detector_accuracy(detector: DigitClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Balanced accuracy: the mean of the detector's accuracy on ``real`` and on ``fake``."""
    detector.eval()
    on_real = (detector(_check_images(real)).argmax(1) == 0).float().mean()
    on_fake = (detector(_check_images(fake)).argmax(1) == 1).float().mean()
    return ((on_real + on_fake) / 2).item()

# ---------------------------------------------------------------------------
# Image watermark: keyed spread spectrum in the DCT domain
# ---------------------------------------------------------------------------


@lru_cache(maxsize=8)
def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix D (n, n): ``D @ x`` is the DCT of x, ``D.T @ X`` its inverse (cached; do not modify)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.float()


def dct2(images: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT over the last two dimensions (square images)."""
    d = dct_matrix(images.shape[-1])
    return d @ images @ d.T


def idct2(coefficients: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2`."""
    d = dct_matrix(coefficients.shape[-1])
    return d.T @ coefficients @ d


@dataclass(frozen=True)
class ImageWatermark:
    """An invisible, keyed watermark for square greyscale images (spread spectrum, Cox et al. 1997).

    ``embed`` adds ``strength * p`` to the DCT coefficients in the frequency band
    ``low <= u + v <= high``, where ``p`` is a ±1 pattern drawn from ``key``.
    ``score`` correlates an image's band coefficients with ``p``, each weighted
    by 1 / sigma_k^2, the variance of that coefficient over real images (the
    matched filter for a Gaussian host: low frequencies, where images carry most
    energy, count less). The result is a z-score: about N(0, 1) without the
    mark. Without the key the pattern cannot be found or removed on purpose,
    but blur and JPEG remove the high frequencies it lives in: a trade-off
    the lesson measures. Call :meth:`calibrate` with real images first.
    """

    key: int = 2024
    strength: float = 0.04
    low: int = 10
    high: int = 54
    host_std: torch.Tensor | None = field(default=None, compare=False, repr=False)

    def pattern(self, size: int) -> torch.Tensor:
        """The ±1 pattern on the band, 0 elsewhere: (size, size)."""
        u, v = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        band = ((u + v) >= self.low) & ((u + v) <= self.high)
        signs = torch.randint(0, 2, (size, size), generator=torch.Generator().manual_seed(self.key)) * 2 - 1
        return signs.float() * band

    def calibrate(self, real_images: torch.Tensor) -> "ImageWatermark":
        """A copy that knows how much each DCT coefficient varies over ``real_images`` (N >= 2)."""
        real_images = _check_images(real_images)
        if len(real_images) < 2:
            raise ValueError("calibrate needs at least two real images")
        return replace(self, host_std=dct2(real_images)[:, 0].std(dim=0).clamp(min=1e-3))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Watermarked copies of ``images`` (N, 1, H, H), clipped and quantised to 8 bits."""
        images = _check_images(images)
        mark = idct2(self.strength * self.pattern(images.shape[-1]))
        return quantise(images + mark)

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """z-score per image (N,): weighted correlation of the band coefficients with the pattern."""
        images = _check_images(images)
        if self.host_std is None:
            raise ValueError("the detector needs the spread of real images' coefficients: "
                             "use watermark = watermark.calibrate(real_images) first")
        if self.host_std.shape != images.shape[-2:]:
            raise ValueError(f"calibrated on {tuple(self.host_std.shape)} images, got {tuple(images.shape[-2:])}")
        p = self.pattern(images.shape[-1])
        band = p != 0
        c = dct2(images)[:, 0][:, band]                     # (N, K) band coefficients
        inv_var = self.host_std[band] ** -2
        return (c * p[band] * inv_var).sum(1) / inv_var.sum().sqrt()

    def detect(self, images: torch.Tensor, threshold: float = 4.0) -> torch.Tensor:
        """Boolean (N,): is the watermark present (z-score above ``threshold``)?"""
        return self.score(images) > threshold


def psnr(reference: torch.Tensor, images: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB (peak 1.0), averaged over the set's total squared error."""
    mse = (reference.float() - images.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)

# ---------------------------------------------------------------------------
# Text watermark: green lists (Kirchenbauer et al. 2023)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TextWatermark:
    """The green-list watermark for sampled text.

    For each position, the previous token and the secret ``key`` seed a random
    split of the vocabulary: a fraction ``gamma`` is "green". Generation adds
    ``delta`` to the green logits before sampling; text written without the
    watermark has about ``gamma`` green tokens, watermarked text more, and

        z = (greens - gamma T) / sqrt(T gamma (1 - gamma))

    over T scored tokens measures how surprising the green count is.
    """

    vocab_size: int
    gamma: float = 0.25
    delta: float = 2.0
    key: int = 15485863

    def __post_init__(self):
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma is the green fraction of the vocabulary, in (0, 1); got {self.gamma}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {self.vocab_size}")

    def green_mask(self, previous_token: int) -> torch.Tensor:
        """Boolean (vocab_size,): the green list that follows ``previous_token``."""
        generator = torch.Generator().manual_seed(self.key * 1_000_003 + int(previous_token))
        green = torch.randperm(self.vocab_size, generator=generator)[: int(self.gamma * self.vocab_size)]
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[green] = True
        return mask

    def bias(self, logits: torch.Tensor, previous_token: int) -> torch.Tensor:
        """``logits`` (..., vocab_size) with ``delta`` added to the green tokens."""
        if logits.shape[-1] != self.vocab_size:
            raise ValueError(f"logits have {logits.shape[-1]} entries, the watermark's vocabulary {self.vocab_size}")
        return logits + self.delta * self.green_mask(previous_token).to(logits.dtype)

    def green_count(self, tokens: list[int] | torch.Tensor, unique: bool = True) -> tuple[int, int]:
        """(green tokens, scored tokens) over the pairs (previous token, token).

        With ``unique`` each distinct pair is scored once: in ordinary text
        frequent pairs ("th", "e ") repeat, and counting a green one twenty
        times would break the z-score's assumption of independent draws.
        """
        tokens = [int(t) for t in tokens]
        pairs = list(zip(tokens, tokens[1:]))
        if unique:
            pairs = list(dict.fromkeys(pairs))
        greens = sum(bool(self.green_mask(prev)[tok]) for prev, tok in pairs)
        return greens, len(pairs)

    def z_score(self, tokens: list[int] | torch.Tensor, unique: bool = True) -> float:
        """How many standard deviations the green count lies above chance."""
        greens, total = self.green_count(tokens, unique)
        if total == 0:
            raise ValueError("need at least two tokens to score a watermark")
        return (greens - self.gamma * total) / math.sqrt(total * self.gamma * (1 - self.gamma))


@torch.no_grad()
def sample_tokens(next_logits: Callable[[list[int]], torch.Tensor], prompt: list[int], new_tokens: int, *,
                  watermark: TextWatermark | None = None, temperature: float = 1.0, top_k: int | None = None,
                  seed: int = 0) -> list[int]:
    """Sample ``new_tokens`` tokens after ``prompt`` from any model, optionally watermarked.

    ``next_logits(tokens)`` returns the logits (vocab_size,) of the next token;
    it can wrap the course's GPT or a toy model. ``top_k`` keeps only the k most
    likely tokens *before* the watermark's bias, so the bias chooses among
    plausible tokens instead of lifting the many implausible ones in the tail
    (with a 256-byte vocabulary, a green bonus on the tail adds up to garbage).
    Returns prompt + new tokens.
    """
    if not prompt:
        raise ValueError("the prompt needs at least one token (the watermark is keyed on the previous token)")
    generator = torch.Generator().manual_seed(seed)
    tokens = list(prompt)
    for _ in range(new_tokens):
        logits = next_logits(tokens).float() / temperature
        if top_k is not None:
            kth = logits.topk(min(top_k, len(logits))).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if watermark is not None:
            logits = watermark.bias(logits, tokens[-1])
        tokens.append(int(torch.multinomial(logits.softmax(-1), 1, generator=generator)))
    return tokens
