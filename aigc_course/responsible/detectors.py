"""Detecting generated images, and the everyday post-processing a detector must survive.

* **Everyday post-processing** (:func:`gaussian_blur`, :func:`add_noise`,
  :func:`jpeg`): what an image goes through when it is shared, and what
  detectors and watermarks must survive.
* **A detector** (:func:`train_detector`): a small CNN trained to tell real
  digits from one generator's samples. Its accuracy says how distinguishable
  *that* generator is, on *these* images, for a detector that has seen it.
"""

import io
import math
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
