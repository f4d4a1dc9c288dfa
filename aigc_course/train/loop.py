"""The course's one training loop, :func:`fit`, and the record it keeps, :class:`History`.

A VAE, a GAN, a diffusion U-Net, a GPT and an image being stylised differ in one
thing only: **the step**, how one batch becomes a loss. ``fit`` owns the rest, the
same way for all of them. For every step it

1. takes the next batch (from a DataLoader, any iterable, or a sampler function)
   and moves its tensors to ``device``;
2. sets the learning rate: base rate x ``schedule(state)`` (see ``schedule.py``);
3. updates the weights through ``optimizer.step(closure)``: the closure zeroes the
   gradients, runs the step (under bfloat16 autocast if ``bf16``), back-propagates
   and clips. For Adam that is the familiar zero_grad / backward / step; L-BFGS
   needs the closure because it evaluates the loss several times per step;
4. appends a row to ``history.steps`` and calls every callback's ``on_step``;
5. stops after ``steps`` (or ``epochs``), when ``max_seconds`` of training time are
   spent, or when a callback sets ``state.stop``.

Two kinds of step function:

* **loss step**, one optimiser: ``step(model, batch) -> loss`` or ``(loss, logs)``,
  ``logs`` a dict of numbers to record;
* **update step**, several optimisers (``optimizer={"d": ..., "g": ...}``, a GAN):
  ``step(model, batch, optimizers) -> logs``; the step makes its own updates, one
  :func:`update` per player, in the order its algorithm prescribes.

**Several processes** (``torchrun``, see ``distributed.py``): when a process group
with more than one rank is initialised, ``fit`` trains data-parallel by itself.
The loss step runs inside ``DistributedDataParallel`` (gradients averaged over
the ranks during back-propagation); an update step's :func:`update` averages
each player's gradients before it steps; a DataLoader is split between the ranks
(``batch_size`` is per rank: N ranks train with batches N times as large); the
logged numbers are averaged over the ranks; callbacks (evaluation, EMA,
snapshots, anything that writes) and the progress bar run on rank 0 only, and a
stop decided on any rank (``max_seconds``, a callback) stops every rank at the
same step.

Callbacks (``callbacks.py``) are plain objects with any of ``on_fit_start``,
``on_step``, ``on_eval``, ``on_epoch_end``, ``on_fit_end``; each receives the
:class:`State`, a small dataclass (model, optimisers, step, epoch, seconds,
history, ``stop``). This is the callback design of fastai's miniai ``Learner``
(Howard & Gugger, course22p2) without its attribute forwarding: state is passed,
never looked up by name.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from aigc_course.core.env import seed_everything
from aigc_course.train import distributed

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]
HOOKS = ("on_fit_start", "on_step", "on_eval", "on_epoch_end", "on_fit_end")


@dataclass
class History:
    """What happened during training, one shape for every recipe.

    ``steps``: one row per optimisation step ({"step", "epoch", "lr", "loss" or the
    step's logs}); ``evals``: one row per evaluation ({"step", "epoch", "seconds",
    metrics...}); ``seconds``: training time, evaluations and other callbacks excluded.
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def series(self, key: str, where: str = "steps") -> list[float]:
        """One column of ``steps`` (or ``evals``): ``history.series("loss")``."""
        return [row[key] for row in getattr(self, where) if key in row]

    def epoch_means(self, key: str = "loss") -> list[float]:
        """Mean of ``key`` over each epoch's steps, in epoch order."""
        by_epoch: dict[int, list[float]] = {}
        for row in self.steps:
            if key in row:
                by_epoch.setdefault(row["epoch"], []).append(row[key])
        return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]


@dataclass
class State:
    """What callbacks and schedules see: the run so far. ``step`` counts completed steps."""

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    history: History
    device: torch.device
    total_steps: int | None
    max_seconds: float | None = None
    callbacks: list = field(default_factory=list)
    step: int = 0
    epoch: int = 0
    seconds: float = 0.0
    logs: dict[str, float] = field(default_factory=dict)
    stop: bool = False

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of a one-optimiser run (the first of several otherwise)."""
        return next(iter(self.optimizers.values()))

    def notify(self, hook: str) -> None:
        """Call ``hook`` (e.g. "on_eval") on every callback that has it, in order."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self)


def autocast(device: torch.device | str, enabled: bool = True):
    """bfloat16 autocast on CPU or CUDA when ``enabled``; a no-op context elsewhere."""
    device = torch.device(device)
    if enabled and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float | None = None) -> None:
    """One gradient step on an already computed ``loss`` (an update step's building block).

    zero the gradients of ``optimizer``'s parameters, back-propagate, clip their
    norm to ``grad_clip`` if given, step. A GAN step calls it once for D, once for G.
    When a process group of more than one rank is up (torchrun), the gradients are
    averaged over the ranks before clipping: every rank takes the same step.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for p in params:
        p.grad = None
    loss.backward()
    distributed.average_gradients(params)  # several processes: every rank steps with the mean gradient
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def adam(lr: float = 1e-3, **kwargs) -> OptimizerFactory:
    """Factory for ``fit``: Adam over the model's trainable parameters."""
    return lambda model: torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, **kwargs)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _plan(data, steps: int | None, epochs: int | None) -> tuple[Callable[[], Iterable], int | None, int | None]:
    """(a function giving one epoch's batches, total steps or None, epochs or None)."""
    if (steps is None) == (epochs is None):
        raise ValueError("give fit exactly one of steps= or epochs=")
    if (steps is not None and steps < 1) or (epochs is not None and epochs < 1):
        raise ValueError(f"steps and epochs must be >= 1, got steps={steps}, epochs={epochs}")
    if data is None or callable(data) and not hasattr(data, "__iter__"):
        if steps is None:
            raise ValueError("a batch sampler (or data=None) has no epochs: give fit steps=")
        draw = data or (lambda: None)
        return (lambda: (draw() for _ in range(steps))), steps, None
    if not isinstance(data, Iterable):
        raise TypeError(f"data must be a DataLoader, an iterable of batches, a batch sampler or None, "
                        f"got {type(data).__name__}")
    if steps is not None:
        return (lambda: data), steps, None
    total = epochs * len(data) if hasattr(data, "__len__") else None
    return (lambda: data), total, epochs


def _make_optimizers(model: nn.Module, optimizer, lr: float) -> dict[str, torch.optim.Optimizer]:
    factories = optimizer if isinstance(optimizer, Mapping) else {"optimizer": optimizer or adam(lr)}
    optimizers = {name: make(model) for name, make in factories.items()}
    for opt in optimizers.values():
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])  # the base rate the schedule multiplies
    return optimizers


def _loss_step(step: Callable, state: State, bf16: bool, grad_clip: float | None) -> Callable[[Any], dict]:
    """batch -> logs for a loss step: one ``optimizer.step(closure)``, the closure as L-BFGS needs it.

    ``step(batch)`` here takes the batch only: ``step(model, batch)`` bound to the
    model, or the DDP-wrapped step that averages gradients in backward.
    """
    params = [p for p in state.model.parameters() if p.requires_grad]

    def run(batch) -> dict[str, float]:
        logs: dict[str, float] = {}

        def closure() -> torch.Tensor:  # L-BFGS may call it several times per step; Adam once
            state.optimizer.zero_grad(set_to_none=True)
            with autocast(state.device, bf16):
                out = step(batch)
            loss, extra = out if isinstance(out, tuple) else (out, {})
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            logs.clear()
            logs.update({"loss": loss.item(), **extra})
            return loss

        state.optimizer.step(closure)
        return logs
    return run


def _set_lr(state: State, schedule: Callable[[State], float] | None) -> float:
    factor = schedule(state) if schedule is not None else 1.0
    for opt in state.optimizers.values():
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * factor
    return state.optimizer.param_groups[0]["lr"]


_END = object()


def _parallel(requested: bool | None, model: nn.Module) -> bool:
    """Whether fit trains data-parallel: asked for, or (None) a process group of >1 ranks is up."""
    if requested is None:
        return distributed.world_size() > 1 and any(p.requires_grad for p in model.parameters())
    if requested and not distributed.is_active():
        raise ValueError("distributed_training=True needs a process group: launch with torchrun and call "
                         "aigc_course.train.distributed.init() first")
    return requested


def fit(model: nn.Module, step: Callable, data=None, *, steps: int | None = None, epochs: int | None = None,
        lr: float = 1e-3, optimizer: OptimizerFactory | Mapping[str, OptimizerFactory] | None = None,
        schedule: Callable[[State], float] | None = None, callbacks: Iterable = (),
        max_seconds: float | None = None, device: torch.device | str = "cpu", bf16: bool = False,
        grad_clip: float | None = None, progress: bool = True, desc: str = "training",
        distributed_training: bool | None = None) -> History:
    """Train ``model`` with ``step`` on ``data`` for ``steps`` steps or ``epochs`` epochs; return its History.

    ``data``: a DataLoader or any re-iterable of batches (one pass = one epoch), a
    function returning a fresh batch (with ``steps=``), or None (the step needs no
    data: ``batch`` is None). ``optimizer``: a factory ``model -> Optimizer``
    (default ``adam(lr)``), or a dict of factories for an update step (see the
    module docstring). ``schedule(state)`` multiplies each group's base learning
    rate. ``max_seconds`` bounds training time (evaluations not counted), checked
    after every step. ``grad_clip`` clips the norm of the trainable parameters'
    gradients (loss steps). ``bf16`` runs loss steps under bfloat16 autocast.
    ``distributed_training``: None trains data-parallel when a process group of
    more than one rank is initialised (see the module docstring), False never,
    True always (even with one rank; it needs a process group).
    """
    parallel = _parallel(distributed_training, model)
    if parallel:
        data = distributed.shard(data)
    epoch_batches, total, epochs = _plan(data, steps, epochs)
    device = torch.device(device)
    model.to(device)
    main = not parallel or distributed.is_main()
    state = State(model, _make_optimizers(model, optimizer, lr), History(), device, total, max_seconds,
                  list(callbacks) if main else [])  # callbacks observe, evaluate and write: rank 0's job
    trainee: nn.Module = model  # what is put in train mode: the model, or its DDP wrapper
    update_step = isinstance(optimizer, Mapping)
    if update_step:
        if parallel:
            distributed.broadcast_module(model)  # start from rank 0's weights, as DDP does
        train_step = lambda batch: dict(step(model, batch, state.optimizers))  # noqa: E731  (an update step)
    else:
        trainee = distributed.wrap_step(model, step) if parallel else model
        bound = trainee if parallel else (lambda batch: step(model, batch))
        train_step = _loss_step(bound, state, bf16, grad_clip)
    if parallel and distributed.rank() > 0:
        # this rank's own noise, dropout, batches (NumPy takes seeds below 2**32; torch's unseeded one is larger)
        seed_everything(distributed.rank_seed(torch.initial_seed()) % 2**32)
    sampler = getattr(data, "sampler", None)
    bar = tqdm(total=total, desc=desc, unit="step", disable=not (progress and main))
    state.notify("on_fit_start")
    while not state.stop:
        state.epoch += 1
        trainee.train()
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(state.epoch)  # a new permutation each epoch, the same on every rank
        batches = iter(epoch_batches())
        while not state.stop:
            started = time.perf_counter()
            batch = next(batches, _END)
            if batch is _END:
                break
            lr_now = _set_lr(state, schedule)
            state.logs = train_step(_to_device(batch, device))
            if parallel:
                if update_step:  # (DDP does this itself at every forward)
                    distributed.broadcast_module(model, buffers_only=True)  # e.g. BatchNorm statistics: rank 0's
                state.logs = distributed.all_reduce(state.logs)  # the whole batch's numbers, not one shard's
            state.step += 1
            state.history.steps.append({"step": state.step, "epoch": state.epoch, "lr": lr_now, **state.logs})
            state.seconds += time.perf_counter() - started
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(state.logs.items())[:3]}, refresh=False)
            bar.update()
            state.notify("on_step")
            state.stop = state.stop or (epochs is None and state.step >= total) or \
                (max_seconds is not None and state.seconds >= max_seconds)
            if parallel:
                state.stop = distributed.any_rank(state.stop)  # one rank stopping alone would hang the others
        if state.step == 0:
            raise ValueError("data gave no batches")
        state.notify("on_epoch_end")
        state.stop = state.stop or (epochs is not None and state.epoch >= epochs)
    bar.close()
    state.history.seconds = state.seconds
    state.notify("on_fit_end")
    model.eval()
    return state.history
