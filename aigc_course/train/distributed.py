"""Training across processes: what ``fit`` needs from ``torch.distributed``, nothing more.

Launch any course training with ``torchrun`` and every process runs the same
program; they tell themselves apart by the environment variables torchrun sets:
``RANK`` (0 .. WORLD_SIZE-1, unique over all machines), ``LOCAL_RANK`` (the
process's number on this machine: which GPU it takes), ``WORLD_SIZE`` and
``LOCAL_WORLD_SIZE`` (how many processes in all and on this machine) and
``MASTER_ADDR``/``MASTER_PORT`` (where rank 0 waits for the others to rendezvous).

    torchrun --standalone --nproc_per_node=2 -m aigc_course train vae --preset vae_mlp2d

:func:`init` reads them and joins the process group (NCCL on CUDA, gloo on the
CPU); in a plain ``python`` process it does nothing, and every helper below then
answers as for a single process (rank 0 of 1), so the same code runs both ways.

**Data parallelism** (what ``fit`` does with more than one process): every rank
holds a full copy of the model, takes a different shard of each batch
(:func:`shard`), computes its gradients, and before the optimiser steps the
gradients are averaged over the ranks (an all-reduce; ``DistributedDataParallel``
does it bucket by bucket while back-propagation is still running). Every rank
then applies the same update to the same weights, so the copies never drift
apart. With ``B`` examples per rank and ``N`` ranks this is one step with a batch
of ``N*B``: the mean of the ranks' mean gradients is the mean gradient of the
whole batch.

**Seeds.** Every rank runs the same recipe with the same seed, so the model starts
identical on every rank (and DDP copies rank 0's weights to the others when it
wraps the model, which makes sure of it). The data differ: a DataLoader is split
by a ``DistributedSampler`` whose shuffle is seeded identically on every rank (one
permutation per epoch, rank r taking every N-th example from position r: disjoint
shards), and every random number drawn during training (noise, dropout, batches of
a sampling function) comes from a stream seeded with ``seed + rank``
(:func:`rank_seed`): rank 0's stream is the single-process one, the others differ.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Mapping

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from aigc_course.core.env import pick_device

log = logging.getLogger(__name__)

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """Whether this process was started by torchrun (or anything that sets its variables)."""
    return all(name in os.environ for name in TORCHRUN_VARS)


def init() -> bool:
    """Join the process group torchrun set up; return whether this run is distributed.

    A plain process (no torchrun variables) is left alone: returns False. Under
    torchrun: CUDA (unless ``AIGC_DEVICE=cpu``) -> this process takes GPU
    ``LOCAL_RANK`` and talks NCCL; otherwise gloo over TCP. The CPU cores are
    shared out: ``AIGC_THREADS`` becomes cores / LOCAL_WORLD_SIZE unless set.
    Calling it again is harmless.
    """
    if is_active():
        return True
    if not launched():
        return False
    local_rank, local_size = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if "AIGC_THREADS" not in os.environ:  # N processes x all cores each would fight over the cores
        os.environ["AIGC_THREADS"] = str(max(1, (os.cpu_count() or 1) // local_size))
    if pick_device().type == "cuda":
        if torch.cuda.device_count() < local_size:
            raise ValueError(f"torchrun started {local_size} processes on this machine but it has "
                             f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node="
                             f"{torch.cuda.device_count()}, or AIGC_DEVICE=cpu to train on the CPU")
        torch.cuda.set_device(local_rank)  # "cuda" now means this rank's GPU
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    log.info("rank %d of %d joined (%s)", rank(), world_size(), backend)
    return True


def is_active() -> bool:
    """Whether a process group is initialised (by :func:`init` or by hand)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 in a plain process)."""
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    """How many processes train together (1 in a plain process)."""
    return dist.get_world_size() if is_active() else 1


def is_main() -> bool:
    """Whether this is rank 0: the one process that logs, evaluates and writes files."""
    return rank() == 0


def rank_seed(seed: int) -> int:
    """The seed of this rank's random stream: ``seed + rank`` (rank 0 keeps ``seed``)."""
    return seed + rank()


def launch_command() -> str:
    """How this run was started, for a model card: ``python -m aigc_course`` or its torchrun equivalent."""
    if world_size() == 1:
        return "python -m aigc_course"
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))
    nodes = "--standalone" if per_node == world_size() else f"--nnodes={world_size() // per_node}"
    return f"torchrun {nodes} --nproc_per_node={per_node} -m aigc_course"


def barrier() -> None:
    """Wait until every rank gets here (a no-op in a plain process)."""
    if is_active():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (a no-op if there is none)."""
    if is_active():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where tensors for collectives must live: the current GPU for NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce(values: Mapping[str, float], op: str = "mean") -> dict[str, float]:
    """Combine a dict of numbers over all ranks: ``op`` "mean", "sum" or "max".

    Every rank must call it with the same keys in the same order (the same code
    path does). In a plain process the values come back unchanged.
    """
    if op not in ("mean", "sum", "max"):
        raise ValueError(f"op must be 'mean', 'sum' or 'max', got {op!r}")
    if not is_active() or not values:
        return dict(values)
    packed = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(packed, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    if op == "mean":
        packed /= world_size()
    return dict(zip(values, packed.tolist()))


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any (one rank's "stop" stops them all)."""
    return bool(all_reduce({"flag": float(flag)}, op="max")["flag"])


def broadcast_module(model: nn.Module, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters and buffers (or buffers only) to every other rank, in place."""
    if not is_active():
        return
    tensors = list(model.buffers()) if buffers_only else [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replace every gradient with its mean over the ranks: DDP's all-reduce, done by hand.

    For steps that make several updates of their own (a GAN's D then G): DDP
    expects one backward pass per forward, so those steps average here instead.
    """
    if not is_active() or world_size() == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size()


class StepModule(nn.Module):
    """The model and its loss step as one module, so that DDP's ``forward`` is the whole step.

    DDP synchronises gradients only for work done inside its ``forward``; a course
    step calls whatever the model offers (``elbo(model, x)`` uses ``encode`` and
    ``decode``), so the step itself becomes the forward.
    """

    def __init__(self, model: nn.Module, step):
        super().__init__()
        self.model, self.step = model, step

    def forward(self, batch: Any):
        return self.step(self.model, batch)


def wrap_step(model: nn.Module, step) -> nn.parallel.DistributedDataParallel:
    """``step(model, batch)`` wrapped in DDP: call ``wrapped(batch)``; backward then averages the gradients."""
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(StepModule(model, step),
                                               device_ids=[device.index] if device.type == "cuda" else None)


def shard(data: Any, seed: int | None = None) -> Any:
    """This rank's share of ``data``; in a plain process ``data`` itself.

    * a DataLoader: the same loader (batch size per rank, collate, workers) with a
      ``DistributedSampler``; it shuffles if the original did, with ``seed`` (default:
      the loader's generator seed, else 0) so that every rank draws the same
      permutation. Call ``loader.sampler.set_epoch(e)`` for a new permutation per
      epoch (``fit`` does). Already distributed loaders are left as they are;
    * a function returning batches, or None: unchanged (the ranks differ by their
      random streams, see :func:`rank_seed`);
    * a list or other sized re-iterable of batches: every N-th batch from position
      ``rank``, cut so every rank has as many.
    """
    if not is_active():
        return data
    if isinstance(data, DataLoader):
        return _shard_loader(data, seed)
    if data is None or callable(data) and not hasattr(data, "__iter__"):
        return data
    if not hasattr(data, "__len__"):
        raise ValueError(f"cannot split an iterable of unknown length ({type(data).__name__}) between ranks: "
                         "pass a DataLoader, a list of batches or a function returning a batch")
    return _RoundRobin(data, rank(), world_size())


def _shard_loader(loader: DataLoader, seed: int | None) -> DataLoader:
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if not isinstance(loader.sampler, (RandomSampler, SequentialSampler)) or loader.batch_size is None:
        raise ValueError("fit can split a DataLoader with shuffle=True/False and a batch_size between ranks; "
                         "for a custom sampler pass a loader built with a DistributedSampler")
    shuffle = isinstance(loader.sampler, RandomSampler)
    if seed is None:
        seed = loader.generator.initial_seed() if loader.generator is not None else 0
    sampler = DistributedSampler(loader.dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, drop_last=loader.drop_last,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                      persistent_workers=loader.persistent_workers, worker_init_fn=loader.worker_init_fn)


class _RoundRobin:
    """Batches ``rank``, ``rank + n``, ... of a sized re-iterable, as many on every rank."""

    def __init__(self, data, rank: int, n: int):
        self.data, self.rank, self.n = data, rank, n

    def __len__(self) -> int:
        return len(self.data) // self.n

    def __iter__(self):
        for i, batch in enumerate(self.data):
            if i >= len(self) * self.n:
                return
            if i % self.n == self.rank:
                yield batch
