"""Checkpoints: safetensors weights plus a JSON model card.

A checkpoint ``NAME`` is two files side by side::

    NAME.safetensors   the weights (no pickle, so loading cannot run code)
    NAME.json          the card: model kind and config, metrics, the command and
                       seed that trained it, duration, hardware, weights' sha256

An *adapter* (e.g. a LoRA fine-tune) is a checkpoint too: a few tensors that
change a base checkpoint, with a card that names that ``base`` (a shipped name
or a path). :func:`save_adapter` writes one with the same card conventions.

This module knows files, not models: :func:`read_checkpoint` checks the
weights' sha256 against the card first, so a truncated or swapped file gives
one clear error, and returns plain tensors; :func:`find_checkpoint` turns "a
path or a shipped name" into the files' path. Turning a card back into a model
(and applying an adapter to its base) is the job of
:mod:`aigc_course.models.hub`: ``load("vae_mlp2d")``, ``load("tang_lora")``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from aigc_course.core.assets import AssetError, asset_path, check_file, data_dir, registry, sha256sum

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


def save_adapter(tensors: dict[str, torch.Tensor], path: str | Path, card: dict) -> Path:
    """Write an adapter, ``path``.safetensors (its tensors only) and ``path``.json; return the card's path.

    ``card`` must say what the adapter is (``kind``, e.g. "LoRAAdapter") and
    which checkpoint it changes (``base``: a shipped name or a path); the rest
    (its own config, metrics, command, seed, hardware) is kept as given. The
    file name, sha256 and parameter count are added here, as for
    :func:`save_checkpoint`, and :func:`read_checkpoint` reads it back.
    """
    missing = [key for key in ("kind", "base") if not card.get(key)]
    if missing:
        raise ValueError(f"an adapter card needs {' and '.join(missing)}: the kind of adapter and the base "
                         "checkpoint it changes (a shipped name or a path)")
    if not tensors:
        raise ValueError("an adapter needs at least one tensor; got none (was the adapter added to the model?)")
    path = Path(path).with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.with_suffix(".safetensors")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, weights)
    head = {"name": path.name, "kind": card["kind"], "base": card["base"]}
    full_card = {**head, **{k: v for k, v in card.items() if k not in head and k not in _FILE_KEYS},
                 "weights": weights.name, "weights_sha256": sha256sum(weights),
                 "parameters": sum(v.numel() for v in tensors.values())}
    card_path = path.with_suffix(".json")
    card_path.write_text(json.dumps(full_card, indent=2) + "\n")
    return card_path


_FILE_KEYS = ("weights", "weights_sha256", "parameters")  # written by the savers, never taken from a caller


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


def shipped_names() -> list[str]:
    """Names of the checkpoints shipped in ``data/checkpoints/`` (those the asset registry lists)."""
    prefix = f"{CHECKPOINT_DIR}/"
    return sorted(p[len(prefix):-len(".json")] for p in registry() if p.startswith(prefix) and p.endswith(".json"))


def find_checkpoint(name_or_path: str | Path) -> Path:
    """Path (without suffix) of a checkpoint given as a path on disk or as a shipped name.

    A path wins when ``NAME.json`` or ``NAME.safetensors`` exists there (a
    missing or damaged partner file is reported when it is read); otherwise a
    shipped name is looked up and verified. Neither gives one
    ``FileNotFoundError`` naming both possibilities.
    """
    text = str(name_or_path)
    path = Path(text)
    if path.name and (path.with_suffix(".json").exists() or path.with_suffix(".safetensors").exists()):
        return path.with_suffix("")
    names = shipped_names()
    if text in names:
        return shipped_checkpoint(text)
    where = f"{path.with_suffix('.json')} does not exist" if path.name else "the name is empty"
    raise FileNotFoundError(f"no checkpoint {text!r}: as a path, {where}; as a shipped name, it is none of "
                            f"{', '.join(names)}. Pass NAME for NAME.json + NAME.safetensors that you trained "
                            "(`python -m aigc_course train ... --out NAME`), or a shipped name")
