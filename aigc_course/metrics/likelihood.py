"""Likelihood metrics: how many nats (or bits) a model needs per example.

For likelihood models such as the VAE: the negative ELBO (an upper bound) and
the importance-weighted negative log-likelihood (a tighter bound, Burda et al.
2016), in nats per image, and the same per pixel in bits (nats / (pixels * ln 2)).
Lower is better for all three.
"""
from __future__ import annotations

import math

import torch

from aigc_course.data.digits import DigitDataset
from aigc_course.models.vae import VAE, elbo, importance_weighted_log_likelihood


def bits_per_dim(nats_per_example: float, dims: int = 784) -> float:
    """Convert a per-example NLL in nats to bits per dimension."""
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
