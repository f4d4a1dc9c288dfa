"""Checkpoints: safetensors weights plus a JSON model card.

A checkpoint ``NAME`` is two files side by side::

    NAME.safetensors   the weights (no pickle, so loading cannot run code)
    NAME.json          the card: model kind and config, metrics, the command and
                       seed that trained it, duration, hardware, weights' sha256

``load_checkpoint(path)`` rebuilds the model from the card and checks the
weights' sha256 first, so a truncated or swapped file gives one clear error.
``load_pretrained("vae_mlp2d")`` does the same for the checkpoints shipped in
``data/checkpoints/`` (also listed in the asset registry).
"""
from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from aigc_course.assets import AssetError, asset_path, check_file, data_dir, sha256sum
from aigc_course.models import build_model

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


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model described by ``path``.json, load ``path``.safetensors; return (model in eval mode, card)."""
    path = Path(path).with_suffix("")
    card = read_card(path)
    weights = check_file(path.with_suffix(".safetensors"), card["weights_sha256"], what=f"weights of {path.name}")
    model = build_model(card["kind"], card["config"])
    try:
        state = load_file(weights)
    except SafetensorError as err:  # pragma: no cover - the sha256 check catches damaged files first
        raise AssetError(f"{weights} is not a readable safetensors file ({err}): restore or retrain it") from err
    model.load_state_dict(state)
    return model.to(device).eval(), card


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a checkpoint shipped with the course, e.g. ``"vae_mlp2d"`` or ``"vae_conv16"``.

    Both files are verified against the asset registry before use.
    """
    for suffix in (".json", ".safetensors"):
        asset_path(f"{CHECKPOINT_DIR}/{name}{suffix}")
    return load_checkpoint(data_dir() / CHECKPOINT_DIR / name, device)
