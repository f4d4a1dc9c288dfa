"""Measuring a handwritten digit: stroke thickness, slant and size, with a few lines of arithmetic each.

Lesson 08 writes captions from these numbers ("a thin seven leaning right") and
later measures generated digits with the *same* functions to check that they
show what the prompt asked for. Every measure works on grey images (N, 1, 28, 28)
or (N, 28, 28) in [0, 1]; "ink" is a pixel brighter than 0.5.

* **thickness** (pixels): a stroke of width w and length L covers about w * L
  pixels of ink and has about 2 L pixels of edge, so ``2 * ink / edges`` ~ w.
  Edges are counted between 4-neighbours, one ink and one not.
* **slant**: the shear that would make the digit upright (the deskewing trick
  of LeCun et al. 1998), from the image's second moments:
  ``slant = -cov(x, y) / var(y)`` with y pointing down, so a digit whose top
  leans to the right has slant > 0. 0.3 means the top moves 0.3 px right per
  pixel of height.
* **size** (pixels): the area of the ink's bounding box, height x width. MNIST
  scaled every digit to fit a 20x20 box, so height is ~20 for most digits and
  the size says how wide a digit is written.

Each measure is cut into three levels (``LEVELS``) by thresholds fixed from the
training digits' terciles (:data:`THRESHOLDS`, see ``tests/test_text2img.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

INK = 0.5
ATTRIBUTES = ("thickness", "slant", "size")
# Each attribute's three levels, low to high; the middle level is what a caption leaves unsaid.
LEVELS = {"thickness": ("thin", "regular", "bold"),
          "slant": ("left", "upright", "right"),
          "size": ("small", "medium", "large")}
# Terciles of the 8,000 training digits (rounded): below the first is level 0, above the second is level 2.
THRESHOLDS = {"thickness": (1.75, 2.2), "slant": (0.0, 0.25), "size": (260.0, 320.0)}


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) or (N, 28, 28) or (28, 28) -> (N, 28, 28) float."""
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected digit images (N, 1, 28, 28) or (N, 28, 28), got shape {tuple(images.shape)}")
    return images.float()


def thickness(images: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels (N,): 2 * ink area / number of ink-to-background edges."""
    ink = (_as_batch(images) > INK).float()
    padded = torch.nn.functional.pad(ink, (1, 1, 1, 1))      # so the border counts as background
    edges = (padded[:, 1:, :] - padded[:, :-1, :]).abs().sum((1, 2)) + \
        (padded[:, :, 1:] - padded[:, :, :-1]).abs().sum((1, 2))
    return 2 * ink.sum((1, 2)) / edges.clamp(min=1)


def slant(images: torch.Tensor) -> torch.Tensor:
    """Shear of the digit (N,): -cov(x, y) / var(y) of the grey values; > 0 leans right (y points down)."""
    x = _as_batch(images)
    mass = x.sum((1, 2)).clamp(min=1e-6)
    rows = torch.arange(x.shape[1], dtype=x.dtype)[None, :, None]
    cols = torch.arange(x.shape[2], dtype=x.dtype)[None, None, :]
    mean_y = (x * rows).sum((1, 2)) / mass
    mean_x = (x * cols).sum((1, 2)) / mass
    dy = rows - mean_y[:, None, None]
    dx = cols - mean_x[:, None, None]
    cov = (x * dx * dy).sum((1, 2)) / mass
    var_y = (x * dy * dy).sum((1, 2)) / mass
    return -cov / var_y.clamp(min=1e-6)


def size(images: torch.Tensor) -> torch.Tensor:
    """Area of the ink's bounding box in pixels (N,), height x width; 0 for an empty image."""
    ink = _as_batch(images) > INK
    rows, cols = ink.any(2), ink.any(1)                       # (N, 28): which rows / columns hold ink

    def extent(mask: torch.Tensor) -> torch.Tensor:
        index = torch.arange(mask.shape[1])
        first = torch.where(mask, index, mask.shape[1]).min(1).values
        last = torch.where(mask, index, -1).max(1).values
        return (last - first + 1).clamp(min=0)
    return (extent(rows) * extent(cols)).float()


MEASURES = {"thickness": thickness, "slant": slant, "size": size}


def measure(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """All three measures of a batch: {"thickness": (N,), "slant": (N,), "size": (N,)}."""
    return {name: fn(images) for name, fn in MEASURES.items()}


def to_levels(values: torch.Tensor, attribute: str) -> torch.Tensor:
    """Measured values (N,) -> levels 0, 1, 2 (N,) long, cut at ``THRESHOLDS[attribute]``."""
    low, high = THRESHOLDS[attribute]
    return (values > low).long() + (values > high).long()


@dataclass
class DigitAttributes:
    """What the lesson knows about each digit: its class and the level (0, 1, 2) of every attribute, (N,) each."""

    digit: torch.Tensor
    thickness: torch.Tensor
    slant: torch.Tensor
    size: torch.Tensor

    def __len__(self) -> int:
        return len(self.digit)

    def row(self, i: int) -> dict[str, int]:
        """Digit i as a plain dict: {"digit": 7, "thickness": 0, "slant": 2, "size": 1}."""
        return {"digit": int(self.digit[i]), **{a: int(getattr(self, a)[i]) for a in ATTRIBUTES}}


def attributes_of(images: torch.Tensor, labels: torch.Tensor) -> DigitAttributes:
    """Measure ``images`` and cut every measure into levels; ``labels`` (N,) are the digits' classes."""
    values = measure(images)
    return DigitAttributes(labels.long(), *(to_levels(values[a], a) for a in ATTRIBUTES))
