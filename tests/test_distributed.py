"""Training across processes (train/distributed.py and fit under torchrun), on the CPU with gloo.

The central claim: N processes with batch B per process take the same steps as one
process with batch N*B on the same examples. Two processes are started once per
test module (``torch.multiprocessing``, spawn, as torchrun would: the variables it
sets are set by hand); the reference is a plain PyTorch loop in this process, no
``fit``, no DDP.

Tolerance: float32 sums are not associative. One process reduces the 2B-example
batch in one go; DDP averages two B-example means (the all-reduce adds the two
ranks' gradients, then divides by 2). The two agree to rounding (~1e-7 relative
per gradient), and 16 Adam steps carry that along, so we allow 1e-5 absolute on
weights of size ~0.5 (measured: 4.5e-8 with one thread per process). Training
moves the weights by 0.1, and a rank that stepped on its own shard's gradient
alone ends 0.05 away: thousands of times the tolerance, so the comparison
cannot pass by accident. The ranks themselves agree exactly (tolerance 0): they
apply the same averaged gradient to the same weights.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aigc_course.train import distributed

ROOT = Path(__file__).resolve().parents[1]
N, B, WORLD, EPOCHS, LR = 64, 4, 2, 2, 1e-2
TOL = 1e-5


def _data() -> TensorDataset:
    """64 examples of a smooth 4-D regression problem, and each example's index (to see who trained on what)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 4, generator=g)
    y = torch.sin(x.sum(dim=1, keepdim=True)) + 0.1 * torch.randn(N, 1, generator=g)
    return TensorDataset(x, y, torch.arange(N))


def _net() -> nn.Module:
    torch.manual_seed(0)  # the same start on every rank and in the reference
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ what each of the two processes runs


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), AIGC_DEVICE="cpu", AIGC_THREADS="1")
    torch.set_num_threads(1)
    from aigc_course.train import distributed, fit, update

    assert distributed.init() and distributed.world_size() == WORLD and distributed.rank() == rank
    results = {}

    # 1) a loss step through DistributedDataParallel, a shuffled DataLoader split by fit
    seen = []

    def mse(model, batch):
        x, y, idx = batch
        seen.append(idx.clone())
        return nn.functional.mse_loss(model(x), y)

    model = _net()
    loader = DataLoader(_data(), batch_size=B, shuffle=True, generator=torch.Generator().manual_seed(3))
    history = fit(model, mse, loader, epochs=EPOCHS, lr=LR, progress=False)
    results["loss_step"] = {"params": [p.detach().clone() for p in model.parameters()], "seen": seen,
                            "losses": history.series("loss")}

    # 2) an update step (two optimisers, each player's update() averages its gradients), a list of batches
    seen_u = []

    def two_players(model, batch, optimizers):
        x, y, idx = batch
        seen_u.append(idx.clone())
        first = nn.functional.mse_loss(model[0](x).mean(dim=1, keepdim=True), y)
        update(optimizers["first"], first)
        second = nn.functional.mse_loss(model[2](torch.tanh(model[0](x)).detach()), y)
        update(optimizers["second"], second)
        return {"first": first.item(), "second": second.item()}

    model = _net()
    torch.manual_seed(2**63)  # a seed NumPy cannot take: fit's per-rank reseed must still work
    data = _data()
    batches = [data[i:i + B] for i in range(0, N, B)]  # in order: batch i goes to rank i % 2
    sgd = {"first": lambda m: torch.optim.SGD(m[0].parameters(), lr=0.05),
           "second": lambda m: torch.optim.SGD(m[2].parameters(), lr=0.05)}
    fit(model, two_players, batches, epochs=1, optimizer=sgd, progress=False)
    results["update_step"] = {"params": [p.detach().clone() for p in model.parameters()], "seen": seen_u}
    torch.save(results, Path(out) / f"rank{rank}.pt")

    # 3) the command line, each rank in a folder of its own: only rank 0 may print or write
    from aigc_course.__main__ import main
    from aigc_course.models.vae import VAEConfig
    from aigc_course.recipes.vae import VAE_PRESETS, VAERecipe

    VAE_PRESETS["vae_tiny_test"] = VAERecipe(VAEConfig(arch="mlp", latent_dim=2, hidden=32), epochs=1)
    folder = Path(out) / f"cwd{rank}"
    folder.mkdir()
    os.chdir(folder)
    with open(Path(out) / f"stdout{rank}.txt", "w") as stdout, open(Path(out) / f"stderr{rank}.txt", "w") as stderr:
        sys.stdout, sys.stderr = stdout, stderr
        code = main(["train", "vae", "--preset", "vae_tiny_test", "--iw-k", "0", "--out", "ckpt/tiny"])
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    (Path(out) / f"exit{rank}.txt").write_text(str(code))
    assert not distributed.is_active()  # the command leaves the process group


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run :func:`_worker` in 2 processes (about 10 s on 2 busy cores); return the folder they wrote to."""
    out = tmp_path_factory.mktemp("two_ranks")
    context = mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 180
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail("the two gloo processes did not finish within 180 s")
    return out


def _reference(steps: list[torch.Tensor], make_optimizer, loss_fn) -> list[torch.Tensor]:
    """One process, plain PyTorch: for each step, one batch made of the given examples."""
    model, data = _net(), _data()
    optimizer = make_optimizer(model)
    for idx in steps:
        x, y, _ = data[idx]
        optimizer.zero_grad()
        loss_fn(model, x, y).backward()
        optimizer.step()
    return [p.detach() for p in model.parameters()]


def _mse_loss(model, x, y):
    return nn.functional.mse_loss(model(x), y)


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a, b))


# ------------------------------------------------------------------ the claims


def test_two_processes_with_batch_b_match_one_with_batch_2b(two_ranks):
    r0, r1 = (torch.load(two_ranks / f"rank{r}.pt")["loss_step"] for r in range(WORLD))
    assert len(r0["seen"]) == len(r1["seen"]) == EPOCHS * N // (WORLD * B)  # 16 steps, batch 4 per rank
    together = [torch.cat([a, b]) for a, b in zip(r0["seen"], r1["seen"])]  # step k's batch of 2B = 8
    expected = _reference(together, lambda m: torch.optim.Adam(m.parameters(), lr=LR), _mse_loss)
    assert _max_diff(r0["params"], expected) < TOL
    assert _max_diff(expected, list(_net().parameters())) > 1000 * TOL  # training did move the weights
    # a rank that stepped on its own shard's gradient alone would be far off
    alone = _reference(r0["seen"], lambda m: torch.optim.Adam(m.parameters(), lr=LR), _mse_loss)
    assert _max_diff(alone, expected) > 100 * TOL


def test_every_rank_ends_with_exactly_the_same_weights(two_ranks):
    for kind in ("loss_step", "update_step"):
        r0, r1 = (torch.load(two_ranks / f"rank{r}.pt")[kind]["params"] for r in range(WORLD))
        assert all(torch.equal(p, q) for p, q in zip(r0, r1)), kind  # same mean gradient, same update: bit for bit


def test_each_rank_sees_its_own_share_of_every_epoch(two_ranks):
    r0, r1 = (torch.load(two_ranks / f"rank{r}.pt")["loss_step"]["seen"] for r in range(WORLD))
    per_epoch = N // (WORLD * B)
    for e in range(EPOCHS):
        mine = torch.cat(r0[e * per_epoch:(e + 1) * per_epoch])
        theirs = torch.cat(r1[e * per_epoch:(e + 1) * per_epoch])
        assert len(mine) == len(theirs) == N // WORLD
        assert set(mine.tolist()).isdisjoint(theirs.tolist())
        assert sorted(mine.tolist() + theirs.tolist()) == list(range(N))
    assert not torch.equal(torch.cat(r0[:per_epoch]), torch.cat(r0[per_epoch:]))  # reshuffled each epoch


def test_logged_loss_is_the_whole_batch_mean(two_ranks):
    r0, r1 = (torch.load(two_ranks / f"rank{r}.pt")["loss_step"] for r in range(WORLD))
    assert r0["losses"] == r1["losses"]  # averaged over the ranks: every rank logs the same numbers
    model, data = _net(), _data()
    x, y, _ = data[torch.cat([r0["seen"][0], r1["seen"][0]])]
    assert r0["losses"][0] == pytest.approx(_mse_loss(model, x, y).item(), rel=1e-6)  # step 1, before any update


def test_update_steps_average_each_players_gradients(two_ranks):
    """A GAN-style step (two optimisers, update() twice) matches one process with the two shards as one batch."""
    r0, r1 = (torch.load(two_ranks / f"rank{r}.pt")["update_step"] for r in range(WORLD))
    assert [s.tolist() for s in r0["seen"]] == [list(range(i, i + B)) for i in range(0, N, 2 * B)]  # batches 0, 2, ...
    model, data = _net(), _data()
    first = torch.optim.SGD(model[0].parameters(), lr=0.05)
    second = torch.optim.SGD(model[2].parameters(), lr=0.05)
    for a, b in zip(r0["seen"], r1["seen"]):
        x, y, _ = data[torch.cat([a, b])]
        first.zero_grad()
        nn.functional.mse_loss(model[0](x).mean(dim=1, keepdim=True), y).backward()
        first.step()
        second.zero_grad()
        nn.functional.mse_loss(model[2](torch.tanh(model[0](x)).detach()), y).backward()
        second.step()
    expected = [p.detach() for p in model.parameters()]
    assert _max_diff(r0["params"], expected) < TOL
    assert _max_diff(expected, list(_net().parameters())) > 1000 * TOL


def test_only_rank_0_prints_and_writes_files(two_ranks):
    assert [(two_ranks / f"exit{r}.txt").read_text() for r in range(WORLD)] == ["0", "0"]
    assert sorted(p.name for p in (two_ranks / "cwd0" / "ckpt").iterdir()) == ["tiny.json", "tiny.safetensors"]
    assert list((two_ranks / "cwd1").rglob("*")) == []  # rank 1 wrote nothing
    assert "saved ckpt/tiny.safetensors" in (two_ranks / "stdout0.txt").read_text()
    assert (two_ranks / "stdout1.txt").read_text() == ""
    assert "training" in (two_ranks / "stderr0.txt").read_text()  # rank 0's progress bar
    assert "training" not in (two_ranks / "stderr1.txt").read_text()
    card = (two_ranks / "cwd0" / "ckpt" / "tiny.json").read_text()
    assert "torchrun --standalone --nproc_per_node=2 -m aigc_course train vae" in card  # how to reproduce it


# ------------------------------------------------------------------ one process: every helper is a no-op


def test_a_plain_process_is_rank_0_of_1(monkeypatch):
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    assert distributed.init() is False and not distributed.is_active()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.rank_seed(7) == 7
    assert distributed.all_reduce({"loss": 2.5, "acc": 0.5}) == {"loss": 2.5, "acc": 0.5}
    assert distributed.any_rank(True) is True and distributed.any_rank(False) is False
    assert distributed.launch_command() == "python -m aigc_course"
    distributed.barrier()
    distributed.cleanup()
    data = [1, 2, 3]
    assert distributed.shard(data) is data


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="'mean', 'sum' or 'max'"):
        distributed.all_reduce({"x": 1.0}, op="median")
    with pytest.raises(ValueError, match="launch with torchrun"):
        from aigc_course.train import fit
        fit(nn.Linear(1, 1), lambda m, b: m(b).sum(), lambda: torch.ones(1, 1), steps=1, distributed_training=True,
            progress=False)


@pytest.mark.slow
def test_torchrun_trains_a_vae_from_the_command_line(tmp_path):
    """The README's command, shortened to one epoch (about 20 s on 2 busy cores)."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIGC_DEVICE": "cpu"}
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "aigc_course", "train", "vae",
                             "--preset", "vae_mlp2d", "--epochs", "1", "--iw-k", "0", "--out", str(tmp_path / "m")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("test_neg_elbo=") == 1  # one report, from rank 0
    assert (tmp_path / "m.safetensors").exists() and (tmp_path / "m.json").exists()
