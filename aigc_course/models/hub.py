"""Load any course model by name or path: the one place that knows every model family.

    model, card = load("vae_mlp2d")        # a shipped checkpoint, verified against the asset registry
    model, card = load("runs/my_vae")      # one you trained (runs/my_vae.json + .safetensors)
    model, card = load("tang_lora")        # an adapter: its base model (gpt_char) with the LoRA merged in
    model, card = load("tang_lora", merge=False)   # ... or attached, as a separate low-rank path

Every checkpoint, adapters included, comes back through :func:`load`: the card
says which model class to build (``kind`` + ``config``) and the safetensors
weights fill it, so loading never runs code from a file. An adapter's card
names its ``base`` checkpoint, which is loaded the same way first.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aigc_course.core.checkpoints import find_checkpoint, read_checkpoint, shipped_checkpoint
from aigc_course.models.classifier import ClassifierConfig, DigitClassifier
from aigc_course.models.clip import ClipConfig, TinyCLIP
from aigc_course.models.diffusion import UNet, UNetConfig
from aigc_course.models.gan import DCGAN, DCGANConfig, ToyGAN, ToyGANConfig
from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.models.latent_diffusion import AutoencoderConfig, LatentAutoencoder, TextUNet, TextUNetConfig
from aigc_course.models.lora import LORA_ADAPTER, LoRAConfig, add_lora, merge_lora
from aigc_course.models.vae import VAE, VAEConfig

MODELS = {"VAE": (VAE, VAEConfig), "DigitClassifier": (DigitClassifier, ClassifierConfig),
          "DCGAN": (DCGAN, DCGANConfig), "ToyGAN": (ToyGAN, ToyGANConfig), "UNet": (UNet, UNetConfig),
          "GPT": (GPT, GPTConfig), "TinyCLIP": (TinyCLIP, ClipConfig),
          "LatentAutoencoder": (LatentAutoencoder, AutoencoderConfig), "TextUNet": (TextUNet, TextUNetConfig)}


def build_model(kind: str, config: dict) -> nn.Module:
    """Instantiate model class ``kind`` (e.g. "VAE") from a plain config dict."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(MODELS)} and the adapter {LORA_ADAPTER}")
    model_cls, config_cls = MODELS[kind]
    return model_cls(config_cls(**config))


def apply_lora_adapter(base: nn.Module, tensors: dict[str, torch.Tensor], card: dict, merge: bool = True,
                       ) -> nn.Module:
    """Wrap ``base``'s target layers in LoRA (config from ``card["lora"]``), load ``tensors`` into them (in place).

    ``merge=True`` folds each update (alpha / r) B A into its weight, so the
    model costs what the base costs; ``merge=False`` keeps the low-rank paths
    separate (trainable, e.g. to compare merged and unmerged outputs).
    """
    model = add_lora(base, LoRAConfig(**card["lora"]))
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape: another base model
        raise ValueError(f"adapter {card.get('name')} does not fit base {card.get('base')}: {err}") from err
    if unexpected or any(".lora_" in k for k in missing):
        raise ValueError(f"adapter {card.get('name')} does not fit base {card.get('base')}: "
                         f"unexpected {unexpected}, missing {[k for k in missing if '.lora_' in k]}")
    return merge_lora(model) if merge else model


def _load_files(path: Path, device: str | torch.device, merge: bool) -> tuple[nn.Module, dict]:
    state, card = read_checkpoint(path)
    if card["kind"] == LORA_ADAPTER:
        base, _ = load(card["base"], merge=merge)
        model = apply_lora_adapter(base, state, card, merge)
    else:
        model = build_model(card["kind"], card["config"])
        model.load_state_dict(state)
    return model.to(device).eval(), card


def load(name_or_path: str | Path, device: str | torch.device = "cpu", *, merge: bool = True,
         ) -> tuple[nn.Module, dict]:
    """A checkpoint by path (``runs/cgan``) or shipped name (``"cgan"``): (model in eval mode, card).

    A path wins when its files exist; a name that is neither gives one
    ``FileNotFoundError`` naming both possibilities. ``merge`` only matters
    for adapters (see :func:`apply_lora_adapter`).
    """
    return _load_files(find_checkpoint(name_or_path), device, merge)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """:func:`load` for a path only (``path``.json + ``path``.safetensors): never looks up a shipped name."""
    return _load_files(Path(path).with_suffix(""), device, merge=True)


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """:func:`load` for a shipped name only (``"vae_mlp2d"``): both files are verified against the registry."""
    return _load_files(shipped_checkpoint(name), device, merge=True)


def load_text_to_image(name_or_path: str | Path = "t2i_unet", device: str | torch.device = "cpu"):
    """Lesson 08's pipeline: a text-conditioned U-Net with the text encoder (and autoencoder) its card names.

    ``load_text_to_image()`` loads the three shipped checkpoints (``t2i_unet``, ``t2i_clip``,
    ``t2i_autoencoder``) and returns a :class:`~aigc_course.models.text2img.TextToImage`.
    """
    from aigc_course.models.text2img import TextToImage

    unet, card = load(name_or_path, device)
    if card["kind"] != "TextUNet":
        raise ValueError(f"{name_or_path} is a {card['kind']}, not a text-conditioned U-Net (TextUNet)")
    clip, _ = load(unet.config.clip, device)
    autoencoder = load(unet.config.autoencoder, device)[0] if unet.config.autoencoder else None
    return TextToImage(unet, clip, autoencoder)
