"""Watermarks for images and text, each detected by a z-score.

:class:`ImageWatermark` adds a keyed spread-spectrum pattern to mid-frequency
DCT coefficients (Cox et al. 1997) and finds it again by correlation;
:class:`TextWatermark` is the "green list" watermark of Kirchenbauer et al.
2023: the previous token seeds a split of the vocabulary, generation nudges the
logits of the green half up by ``delta``, and a detector who knows the key
counts green tokens and reports a z-score.

Both report a z-score, a number that is about N(0, 1) for content without the
mark, so a threshold of 4 gives a false-positive rate near 3e-5 in theory;
lesson 07 measures it.
"""

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable

import torch

from aigc_course.responsible.detectors import _check_images, quantise
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
