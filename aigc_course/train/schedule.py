"""The course's one learning-rate schedule: linear warm-up, then half a cosine down to a floor.

Every recipe that changes its learning rate during training uses :func:`warmup_cosine`
(the diffusion U-Net without warm-up, the GPTs with it), in the form of nanoGPT's
``get_lr`` (Karpathy, ``train.py``), written as a *multiplier* of each parameter
group's base learning rate so groups with different rates keep their ratio:

1. warm-up: for the first ``warmup`` steps the multiplier climbs linearly,
   (step + 1) / warmup, so Adam's first, noisy moment estimates take small steps;
2. cosine: then it falls along half a cosine from 1 to ``floor``,
   floor + (1 - floor) * (1 + cos(pi * progress)) / 2, progress going 0 -> 1;
3. floor: once ``total`` steps are done it stays at ``floor`` (large steps early,
   fine ones at the end, never zero).

``progress`` is normally the share of the post-warm-up steps done; a run limited by
wall time (a benchmark) can pass the share of its time budget instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def warmup_cosine(step: int, total: int, *, warmup: int = 0, floor: float = 0.05,
                  progress: float | None = None) -> float:
    """Learning-rate multiplier for 0-based ``step`` of ``total``: warm-up, cosine, then ``floor``.

    ``progress`` (0..1) overrides the step-based progress of the cosine (time-limited runs).

        >>> warmup_cosine(0, 100, warmup=10)        # 1) warm-up: 1/10 of the base rate
        0.1
        >>> warmup_cosine(0, 100)                    # 2) cosine, at its start
        1.0
        >>> warmup_cosine(500, 100)                  # 3) floor
        0.05
    """
    if total < 1 or warmup < 0 or not 0 <= floor <= 1:
        raise ValueError(f"need total >= 1, warmup >= 0 and 0 <= floor <= 1, got {total}, {warmup}, {floor}")
    # 1) linear warm-up
    if step < warmup:
        return (step + 1) / warmup
    # 3) past the end (or the time budget): the floor
    if progress is None:
        progress = (step - warmup) / max(1, total - warmup)
    progress = min(1.0, progress)
    # 2) half a cosine from 1 down to the floor
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class WarmupCosine:
    """The schedule as ``fit`` takes it: ``schedule(state) -> multiplier``.

    ``by_time=True`` (with ``fit(max_seconds=...)``) makes the cosine follow the
    share of the time budget used instead of the share of steps.
    """

    warmup: int = 0
    floor: float = 0.05
    by_time: bool = False

    def __call__(self, state) -> float:
        if state.total_steps is None:
            raise ValueError("a warm-up + cosine schedule needs to know the number of steps: give fit steps= "
                             "or epochs= with a data loader that has a length")
        progress = None
        if self.by_time and state.max_seconds and state.step >= self.warmup:
            progress = state.seconds / state.max_seconds
        return warmup_cosine(state.step, state.total_steps, warmup=self.warmup, floor=self.floor,
                             progress=progress)
