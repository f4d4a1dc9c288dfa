"""The course's one image convention: every generator hands out images in [0, 1].

Grey values in [0, 1] are what the data sets store, what ``plots.image_grid``,
the widgets, FID and the detectors expect, and what every public generator API
returns: ``VAE.decode_mean`` / ``VAE.sample``, ``DCGAN.generate`` /
``DCGAN.sample``, ``diffusion.sample`` / ``diffusion.sample_trajectory``. No
caller applies a sigmoid or rescales.

Two families compute in a different space inside, and keep it there under
explicit names:

* the VAE's decoder outputs Bernoulli **logits** (``VAE.decode``), because the
  loss (binary cross-entropy with logits) is stable only on logits;
  ``decode_mean`` = sigmoid(logits) is the mean of p(x|z);
* the GAN's generator (tanh) and the diffusion model work in **model space**
  [-1, 1], centred on 0 like the Gaussian noise they start from. The two
  functions below are the only places that cross between the spaces.
"""
from __future__ import annotations

import torch


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """Grey values in [0, 1] -> model space [-1, 1]: x = 2 * image - 1 (for training and for q(x_t | x_0))."""
    return images * 2 - 1


def from_model_range(x: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] -> grey values in [0, 1]: (x + 1) / 2, clipped (a noisy x_t overshoots [-1, 1])."""
    return ((x + 1) / 2).clamp(0, 1)
