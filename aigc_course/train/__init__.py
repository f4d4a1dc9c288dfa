"""Training: the one loop of the course and what plugs into it.

* ``loop.py``: :func:`fit`, :class:`History`, :class:`State`, :func:`update` (one gradient step);
* ``schedule.py``: the one learning-rate schedule, warm-up then cosine (:func:`warmup_cosine`);
* ``callbacks.py``: evaluate every N, EMA of the weights, snapshots for replays;
* ``stylize.py``: style transfer, training with an image as the only parameter;
* ``distributed.py``: training across processes (``torchrun``): process group, ranks,
  data shards, gradient averaging; ``fit`` uses it by itself when several processes run.

Train imports core, data and models; recipes build on it.
"""
from aigc_course.train import distributed
from aigc_course.train.callbacks import EMA, Callback, EvalEvery, Snapshot
from aigc_course.train.loop import History, State, adam, autocast, fit, update
from aigc_course.train.schedule import WarmupCosine, warmup_cosine

__all__ = ["EMA", "Callback", "EvalEvery", "History", "Snapshot", "State", "WarmupCosine", "adam", "autocast",
           "distributed", "fit", "update", "warmup_cosine"]
