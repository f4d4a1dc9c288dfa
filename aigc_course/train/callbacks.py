"""Callbacks: what ``fit`` does besides optimising, one small object per job.

A callback is any object with some of these methods, each taking the loop's
:class:`~aigc_course.train.loop.State`:

* ``on_fit_start`` before the first step;
* ``on_step`` after every optimisation step;
* ``on_eval`` after every evaluation (fired by :class:`EvalEvery`);
* ``on_epoch_end`` after every pass over the data;
* ``on_fit_end`` after the last step.

:class:`Callback` is a base with all five doing nothing. The three here are the
course's: evaluate every N steps or epochs, keep an exponential moving average of
the weights, and take snapshots for a replay.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn

from aigc_course.train.loop import State


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def on_fit_start(self, state: State) -> None: ...
    def on_step(self, state: State) -> None: ...
    def on_eval(self, state: State) -> None: ...
    def on_epoch_end(self, state: State) -> None: ...
    def on_fit_end(self, state: State) -> None: ...


def _check_every(every: int, unit: str) -> None:
    if every < 1 or unit not in ("step", "epoch"):
        raise ValueError(f"need every >= 1 and unit 'step' or 'epoch', got every={every}, unit={unit!r}")


class EvalEvery(Callback):
    """Evaluate every ``every`` steps or epochs (and once at the end); rows go to ``history.evals``.

    ``evaluate(model) -> dict`` runs in eval mode under ``torch.no_grad()``; the row
    also holds the step, epoch and training seconds so far. Then every callback's
    ``on_eval`` is called. ``final=True`` adds an evaluation after the last step if
    the schedule did not just make one (a run stopped by ``max_seconds`` too).
    """

    def __init__(self, evaluate: Callable[[nn.Module], dict[str, Any]], every: int = 1, unit: str = "epoch",
                 final: bool = True):
        _check_every(every, unit)
        self.evaluate, self.every, self.unit, self.final = evaluate, every, unit, final

    def on_step(self, state: State) -> None:
        if self.unit == "step" and state.step % self.every == 0:
            self.run(state)

    def on_epoch_end(self, state: State) -> None:
        if self.unit == "epoch" and state.epoch % self.every == 0:
            self.run(state)

    def on_fit_end(self, state: State) -> None:
        evals = state.history.evals
        if self.final and (not evals or evals[-1]["step"] != state.step):
            self.run(state)

    def run(self, state: State) -> None:
        was_training = state.model.training
        state.model.eval()
        with torch.no_grad():
            metrics = self.evaluate(state.model)
        state.model.train(was_training)
        state.history.evals.append({"step": state.step, "epoch": state.epoch,
                                    "seconds": round(state.seconds, 1), **metrics})
        state.notify("on_eval")


class EMA(Callback):
    """Exponential moving average of the weights, updated after every step.

    ema <- d * ema + (1 - d) * weights, with d = min(decay, (1 + n) / (10 + n)) at
    the n-th average: the warm-up keeps the first averages from being dominated by
    the random initial weights. The copy taken at the start counts as average
    n = 1, so after k steps n = k + 1. Non-float buffers are copied. ``ema.model``
    is the averaged copy (frozen, eval mode): the weights diffusion samples from.
    """

    def __init__(self, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.updates, self.model = decay, 0, None

    def on_fit_start(self, state: State) -> None:
        self.model = copy.deepcopy(state.model).eval().requires_grad_(False)
        self.updates = 1

    def on_step(self, state: State) -> None:
        self.update(state.model)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(p.to(e.device), 1 - d)
            else:
                e.copy_(p)


class Snapshot(Callback):
    """Keep ``take(state)`` every ``every`` steps or epochs: frames for a replay of training.

    ``at_start`` also takes one before the first step (step 0), ``final`` one after
    the last step if the schedule did not just take it. ``snapshots`` holds them in
    order, ``steps`` the step each was taken at.
    """

    def __init__(self, take: Callable[[State], Any], every: int = 1, unit: str = "step",
                 at_start: bool = True, final: bool = True):
        _check_every(every, unit)
        self.take, self.every, self.unit, self.at_start, self.final = take, every, unit, at_start, final
        self.snapshots: list = []
        self.steps: list[int] = []

    def _take(self, state: State) -> None:
        self.snapshots.append(self.take(state))
        self.steps.append(state.step)

    def on_fit_start(self, state: State) -> None:
        if self.at_start:
            self._take(state)

    def on_step(self, state: State) -> None:
        if self.unit == "step" and state.step % self.every == 0:
            self._take(state)

    def on_epoch_end(self, state: State) -> None:
        if self.unit == "epoch" and state.epoch % self.every == 0:
            self._take(state)

    def on_fit_end(self, state: State) -> None:
        if self.final and (not self.steps or self.steps[-1] != state.step):
            self._take(state)
