"""One training loop for every model in the course.

``fit`` runs mini-batch gradient descent with a ``tqdm`` progress bar, keeps the
loss history, evaluates every ``eval_every`` epochs and calls ``on_epoch_end``
(for checkpoints or live plots). What differs between models is the
``step_loss`` function: it takes (model, batch) and returns the scalar loss to
minimise plus a dict of numbers to log.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

def cosine_factor(step: int, total_steps: int, floor: float = 0.05) -> float:
    """Learning-rate multiplier at ``step``: 1 at the start, ``floor`` at ``total_steps``, half a cosine between."""
    progress = min(1.0, step / max(1, total_steps))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


StepLoss = Callable[[nn.Module, tuple], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class History:
    """What happened during training: per-step logs, per-evaluation metrics, wall time."""

    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def series(self, key: str, where: str = "steps") -> list[float]:
        return [row[key] for row in getattr(self, where) if key in row]


def fit(model: nn.Module, step_loss: StepLoss, train_loader: DataLoader, *, epochs: int,
        lr: float = 1e-3, evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        eval_every: int = 1, on_epoch_end: Callable[[int, History], None] | None = None,
        device: torch.device | str = "cpu", max_seconds: float | None = None,
        progress: bool = True, cosine_decay: bool = False) -> History:
    """Train ``model`` with Adam for ``epochs`` epochs (or until ``max_seconds``); return its History.

    ``evaluate(model)`` runs in eval mode under ``torch.no_grad()``; its dict is
    stored in ``history.evals`` with the epoch number. ``cosine_decay`` lowers
    the learning rate from ``lr`` to ``lr / 20`` along half a cosine over all
    ``epochs * len(train_loader)`` steps (large steps early, fine ones at the end).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    total_steps = epochs * len(train_loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_factor(s, total_steps) if cosine_decay else 1.0)
    history, start, step = History(), time.perf_counter(), 0
    bar = tqdm(total=epochs * len(train_loader), desc="training", unit="batch", disable=not progress)
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in train_loader:
            batch = tuple(t.to(device) for t in batch)
            loss, logs = step_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            value = loss.item()
            history.steps.append({"step": step, "epoch": epoch, "loss": value, **logs})
            bar.set_postfix(epoch=epoch, loss=f"{value:.2f}", refresh=False)
            bar.update()
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            model.eval()
            with torch.no_grad():
                metrics = evaluate(model)
            history.evals.append({"epoch": epoch, "step": step, **metrics})
            log.info("epoch %d: %s", epoch, metrics)
            bar.set_postfix(epoch=epoch, **{k: f"{v:.2f}" for k, v in metrics.items()})
        history.seconds = time.perf_counter() - start
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if max_seconds is not None and history.seconds >= max_seconds:
            break
    bar.close()
    model.eval()
    return history
