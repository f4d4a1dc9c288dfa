"""Load any course model by name or path: the one place that knows every model family.

``load("vae_mlp2d")`` verifies a shipped checkpoint against the asset registry;
``load("runs/my_vae")`` reads one you trained. Both rebuild the model from its
card (kind + config) and load the safetensors weights, so loading never runs
code from a file.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aigc_course.core.checkpoints import read_checkpoint, shipped_checkpoint
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


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model described by ``path``.json, load ``path``.safetensors; return (model in eval mode, card)."""
    state, card = read_checkpoint(path)
    model = build_model(card["kind"], card["config"])
    model.load_state_dict(state)
    return model.to(device).eval(), card


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a checkpoint shipped with the course, e.g. ``"vae_mlp2d"``; both files are verified first."""
    return load_checkpoint(shipped_checkpoint(name), device)


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """A shipped checkpoint's name (``"cgan"``) or a path to one you trained (``runs/cgan``): (model, card)."""
    text = str(name_or_path)
    if "/" in text or "\\" in text or Path(text).with_suffix(".json").exists():
        return load_checkpoint(text, device)
    return load_pretrained(text, device)
