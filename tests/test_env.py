import pytest
import torch

from aigc_course.core import env


def test_pick_device_defaults_to_an_available_device(monkeypatch):
    monkeypatch.delenv("AIGC_DEVICE", raising=False)
    device = env.pick_device()
    assert device.type in {"cpu", "cuda", "mps"}
    torch.zeros(1, device=device)  # usable


def test_pick_device_honours_override_and_rejects_missing_devices(monkeypatch):
    assert env.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("AIGC_DEVICE", "cpu")
    assert env.pick_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            env.pick_device("cuda")


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
