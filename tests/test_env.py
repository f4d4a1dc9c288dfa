import pytest
import torch

from aigc_course.core import env


def _machine(monkeypatch, cuda: bool, mps: bool, env_device: str | None = None):
    """Pretend the machine has (or lacks) CUDA and MPS, and set or clear AIGC_DEVICE."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(env, "_mps_available", lambda: mps)
    if env_device is None:
        monkeypatch.delenv("AIGC_DEVICE", raising=False)
    else:
        monkeypatch.setenv("AIGC_DEVICE", env_device)


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"),    # CUDA first, even where MPS exists too
    (True, False, "cuda"),
    (False, True, "mps"),    # then Apple's GPU
    (False, False, "cpu"),   # else the CPU
])
def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _machine(monkeypatch, cuda, mps)
    assert env.pick_device() == torch.device(expected)


def test_pick_device_override_order_argument_then_environment(monkeypatch):
    _machine(monkeypatch, cuda=True, mps=False, env_device="cpu")
    assert env.pick_device() == torch.device("cpu")            # AIGC_DEVICE beats the CUDA default
    assert env.pick_device("cuda:1") == torch.device("cuda", 1)  # the argument beats AIGC_DEVICE
    _machine(monkeypatch, cuda=False, mps=True, env_device="mps")
    assert env.pick_device() == torch.device("mps")


@pytest.mark.parametrize("asked, cuda, mps, message", [
    ("cuda", False, True, "CUDA is not available"),
    ("cuda:1", False, False, "CUDA is not available"),
    ("mps", True, False, "Apple MPS is not available"),
    ("xla", True, True, "unknown device"),
    ("gpu", True, True, "unknown device .gpu.: use .cpu."),  # not a torch device type at all
])
def test_pick_device_rejects_a_device_the_machine_lacks(monkeypatch, asked, cuda, mps, message):
    _machine(monkeypatch, cuda, mps)
    with pytest.raises(ValueError, match=message):
        env.pick_device(asked)
    _machine(monkeypatch, cuda, mps, env_device=asked)  # the same through the environment variable
    with pytest.raises(ValueError, match=message):
        env.pick_device()


def test_seed_everything_repeats_random_streams():
    gen = env.seed_everything(123)
    a = (torch.rand(3), torch.randn(2, generator=gen))
    gen = env.seed_everything(123)
    b = (torch.rand(3), torch.randn(2, generator=gen))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    env.seed_everything(124)
    assert not torch.equal(torch.rand(3), a[0])


def test_set_threads_and_report():
    assert env.set_threads(1) == 1 and torch.get_num_threads() == 1
    info = env.report()
    assert info["torch"] == torch.__version__ and info["device"] in {"cpu", "cuda", "mps"}
    assert "torch" in env.hardware_summary()
