"""What the recipes share: the model card a digit recipe writes, and the precision a recipe trains in."""
from __future__ import annotations

from dataclasses import asdict, replace

from aigc_course.core.checkpoints import save_checkpoint
from aigc_course.core.env import bf16_supported, hardware_summary


def _save_trained(model, out, recipe, results: dict, command: str, seconds: float, history: dict) -> None:
    """Write the checkpoint with the card every course model carries (recipe, command, seed, hardware, data)."""
    save_checkpoint(model, out, {
        "metrics": results, "recipe": asdict(recipe), "command": command, "seed": recipe.seed,
        "duration_s": round(seconds, 1), "hardware": hardware_summary(),
        "data": "data/digits.npz: 8,000 training digits, 2,000 held out", "history": history})


def with_precision(recipe, device):
    """``recipe`` (a dataclass with a ``bf16`` field) with ``bf16=None`` made concrete: bfloat16 autocast
    only where ``device`` computes in it (:func:`~aigc_course.core.env.bf16_supported`), so a card records
    what ran."""
    return recipe if recipe.bf16 is not None else replace(recipe, bf16=bf16_supported(device))
