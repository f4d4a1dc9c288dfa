"""Likelihood metrics: how many nats (or bits) a model needs per example.

For likelihood models such as the VAE: the negative ELBO (an upper bound) and
the importance-weighted negative log-likelihood (a tighter bound, Burda et al.
2016), in nats per image, and the same per pixel in bits (nats / (pixels * ln 2)).
Lower is better for all three.

What the numbers are depends on the decoder's likelihood. The course's VAEs
score grey values in [0, 1] with a Bernoulli "likelihood", which is a
probability only for pixels that are exactly 0 or 1. On grey values it is a
cross-entropy, not the probability of the data, so these nats and bits per
dimension rank models scored the same way on the same data but are not code
lengths, and cannot be compared with papers' log-likelihoods on binarised
MNIST or with dequantised likelihoods of 8-bit images (Theis, van den Oord &
Bethge 2016).
"""
from __future__ import annotations

import math

import torch

from aigc_course.data.digits import DigitDataset
from aigc_course.models.vae import VAE, elbo, importance_weighted_log_likelihood


def bits_per_dim(nats_per_example: float, dims: int = 784) -> float:
    """Convert a per-example NLL in nats to bits per dimension: ``nats / (dims * ln 2)``.

    For a true likelihood of discrete data this is the average code length of
    one dimension (pixel) in bits. For the course's Bernoulli score on grey
    values it is only the same score per pixel, not a code length (see the
    module docstring).
    """
    return nats_per_example / (dims * math.log(2))


def _mean_over(data: DigitDataset, batch_size: int, per_batch) -> float:
    """Average ``per_batch(x)`` (a sum over the batch) over ``data`` in batches, per image."""
    total = sum(per_batch(data.x[start:start + batch_size]) for start in range(0, len(data), batch_size))
    return total / len(data)


@torch.no_grad()
def negative_elbo(model: VAE, data: DigitDataset, batch_size: int = 1000, seed: int = 0) -> float:
    """Mean negative ELBO (nats per image) over ``data``, one z sample per image drawn with ``seed``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device

    def batch_sum(x):
        eps = torch.randn(len(x), model.latent_dim, generator=generator).to(device)
        return elbo(model, x.to(device), eps=eps).loss.item() * len(x)
    return _mean_over(data, batch_size, batch_sum)


@torch.no_grad()
def importance_weighted_nll(model: VAE, data: DigitDataset, k: int = 500, batch_size: int = 100,
                            seed: int = 0) -> float:
    """Mean importance-weighted NLL (nats per image) with ``k`` samples per image (Burda et al. 2015)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device

    def batch_sum(x):
        return -importance_weighted_log_likelihood(model, x.to(device), k=k, generator=generator).sum().item()
    return _mean_over(data, batch_size, batch_sum)
