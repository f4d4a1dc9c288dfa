"""Checkpoints: safetensors weights plus a JSON model card.

A checkpoint ``NAME`` is two files side by side::

    NAME.safetensors   the weights (no pickle, so loading cannot run code)
    NAME.json          the card: model kind and config, metrics, the command and
                       seed that trained it, duration, hardware, weights' sha256

This module knows files, not models: :func:`read_checkpoint` checks the
weights' sha256 against the card first, so a truncated or swapped file gives
one clear error, and returns plain tensors. Turning a card back into a model is
the job of :mod:`aigc_course.models.hub` (``load("vae_mlp2d")``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from aigc_course.core.assets import AssetError, asset_path, check_file, data_dir, sha256sum

CHECKPOINT_DIR = "checkpoints"


def save_checkpoint(model: nn.Module, path: str | Path, card: dict) -> Path:
    """Write ``path``.safetensors and ``path``.json; return the card's path.

    ``card`` holds what a reader needs to trust the weights (metrics, command,
    seed, duration, hardware); the model kind, config and sha256 are added here.
    """
    path = Path(path).with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.with_suffix(".safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, weights)
    config = model.config
    full_card = {"name": path.name, "kind": type(model).__name__,
                 "config": asdict(config) if is_dataclass(config) else dict(config),
                 "weights": weights.name, "weights_sha256": sha256sum(weights),
                 "parameters": sum(p.numel() for p in model.parameters()), **card}
    card_path = path.with_suffix(".json")
    card_path.write_text(json.dumps(full_card, indent=2) + "\n")
    return card_path


def read_card(path: str | Path) -> dict:
    card_path = Path(path).with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"model card {card_path} is missing: a checkpoint is NAME.safetensors + NAME.json; "
                                "retrain it with `python -m aigc_course train ...` or restore it with "
                                "`git checkout -- data/`")
    try:
        return json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise AssetError(f"model card {card_path} is not valid JSON ({err}): restore or retrain it") from err


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``path``.json and ``path``.safetensors, checking the weights' sha256; return (state dict, card)."""
    path = Path(path).with_suffix("")
    card = read_card(path)
    weights = check_file(path.with_suffix(".safetensors"), card["weights_sha256"], what=f"weights of {path.name}")
    try:
        state = load_file(weights)
    except SafetensorError as err:  # pragma: no cover - the sha256 check catches damaged files first
        raise AssetError(f"{weights} is not a readable safetensors file ({err}): restore or retrain it") from err
    return state, card


def shipped_checkpoint(name: str) -> Path:
    """Path (without suffix) of checkpoint ``name`` shipped in ``data/checkpoints/``, both files verified."""
    for suffix in (".json", ".safetensors"):
        asset_path(f"{CHECKPOINT_DIR}/{name}{suffix}")
    return data_dir() / CHECKPOINT_DIR / name
