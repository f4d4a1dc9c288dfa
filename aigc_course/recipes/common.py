"""What every digit recipe shares: the model card it writes and per-epoch loss summaries."""
from __future__ import annotations

from dataclasses import asdict


from aigc_course.core.checkpoints import save_checkpoint
from aigc_course.core.env import hardware_summary
from aigc_course.train import History

def _save_trained(model, out, recipe, results: dict, command: str, seconds: float, history: dict) -> None:
    """Write the checkpoint with the card every course model carries (recipe, command, seed, hardware, data)."""
    save_checkpoint(model, out, {
        "metrics": results, "recipe": asdict(recipe), "command": command, "seed": recipe.seed,
        "duration_s": round(seconds, 1), "hardware": hardware_summary(),
        "data": "data/digits.npz: 8,000 training digits, 2,000 held out", "history": history})


def _epoch_means(history: History) -> list[float]:
    by_epoch: dict[int, list[float]] = {}
    for row in history.steps:
        by_epoch.setdefault(row["epoch"], []).append(row["loss"])
    return [round(sum(v) / len(v), 2) for _, v in sorted(by_epoch.items())]

def _epoch_means_precise(history: History) -> list[float]:
    by_epoch: dict[int, list[float]] = {}
    for row in history.steps:
        by_epoch.setdefault(row["epoch"], []).append(row["loss"])
    return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]
