"""Model families of the course, one file each. ``build_model`` turns a model card back into a model."""
from __future__ import annotations

from torch import nn

from aigc_course.models.classifier import ClassifierConfig, DigitClassifier
from aigc_course.models.diffusion import UNet, UNetConfig
from aigc_course.models.gan import DCGAN, DCGANConfig, ToyGAN, ToyGANConfig
from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.models.vae import VAE, VAEConfig

MODELS = {"VAE": (VAE, VAEConfig), "DigitClassifier": (DigitClassifier, ClassifierConfig),
          "DCGAN": (DCGAN, DCGANConfig), "ToyGAN": (ToyGAN, ToyGANConfig), "UNet": (UNet, UNetConfig),
          "GPT": (GPT, GPTConfig)}


def build_model(kind: str, config: dict) -> nn.Module:
    """Instantiate model class ``kind`` (e.g. "VAE") from a plain config dict."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(MODELS)}")
    model_cls, config_cls = MODELS[kind]
    return model_cls(config_cls(**config))
