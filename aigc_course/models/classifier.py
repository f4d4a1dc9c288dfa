"""A small digit classifier: the course's feature network for FID and class coverage.

FID (Heusel et al. 2017) compares generated and real images through the
features of a network trained on real images. The standard choice, an
Inception-v3 trained on ImageNet, neither fits the offline rule nor sees digits
well, so the course trains and ships this ~0.4 M-parameter CNN on the same
8,000 training digits instead, and uses its 128-D penultimate activations as
features. Numbers computed with it compare models within this course, not with
papers' Inception FIDs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aigc_course.models.vae import IMAGE_SHAPE


@dataclass
class ClassifierConfig:
    channels: int = 32
    features: int = 128


class DigitClassifier(nn.Module):
    """(B, 1, 28, 28) images in [0, 1] -> 10 logits; ``features`` gives the 128-D embedding."""

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = c = config or ClassifierConfig()
        self.body = nn.Sequential(                                              # (B, 1, 28, 28)
            nn.Conv2d(1, c.channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),           # (B, C, 14, 14)
            nn.Conv2d(c.channels, 2 * c.channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2C, 7, 7)
            nn.Flatten(), nn.Linear(2 * c.channels * 49, c.features), nn.ReLU())     # (B, features)
        self.head = nn.Linear(c.features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"the digit classifier takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
