"""What every digit recipe shares: the model card it writes."""
from __future__ import annotations

from dataclasses import asdict

from aigc_course.core.checkpoints import save_checkpoint
from aigc_course.core.env import hardware_summary


def _save_trained(model, out, recipe, results: dict, command: str, seconds: float, history: dict) -> None:
    """Write the checkpoint with the card every course model carries (recipe, command, seed, hardware, data)."""
    save_checkpoint(model, out, {
        "metrics": results, "recipe": asdict(recipe), "command": command, "seed": recipe.seed,
        "duration_s": round(seconds, 1), "hardware": hardware_summary(),
        "data": "data/digits.npz: 8,000 training digits, 2,000 held out", "history": history})
