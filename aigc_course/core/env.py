"""Where code runs: device choice, CPU threads, seeds and an environment report.

Nothing here assumes CUDA. ``pick_device()`` takes CUDA, then Apple's MPS, then
the CPU; set ``AIGC_DEVICE=cpu`` (or pass ``prefer="cpu"``) to override.
"""
from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the best available device, or the one asked for.

    ``prefer`` (or the ``AIGC_DEVICE`` environment variable) may be ``"cpu"``,
    ``"cuda"``, ``"cuda:1"`` or ``"mps"``. Asking for a device that is not
    there raises a ``ValueError`` instead of failing later inside a model.
    """
    prefer = prefer or os.environ.get("AIGC_DEVICE")
    if prefer:
        try:
            device = torch.device(prefer)
        except RuntimeError as err:  # torch's own message lists dozens of backends a learner never has
            raise ValueError(f"unknown device {prefer!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} requested but CUDA is not available: use 'cpu' or unset AIGC_DEVICE")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"device {prefer!r} requested but Apple MPS is not available: use 'cpu' or unset AIGC_DEVICE")
        if device.type not in {"cpu", "cuda", "mps"}:
            raise ValueError(f"unknown device {prefer!r}: use 'cpu', 'cuda' or 'mps'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def set_threads(n: int | None = None) -> int:
    """Use ``n`` CPU threads for PyTorch (default: ``AIGC_THREADS`` or all cores); return it."""
    n = n or int(os.environ.get("AIGC_THREADS", 0)) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator with that seed.

    Pass the returned generator to samplers where you want a stream of random
    numbers that other code cannot disturb.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
    return torch.Generator().manual_seed(seed)


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 autocast is fast here: CUDA with bf16, or a CPU with AVX-512 BF16 / AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def report() -> dict[str, str]:
    """Versions, hardware and device: what to paste into a bug report."""
    import matplotlib

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": cpu_name(),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "device": str(pick_device()),
    }
    try:
        import ipywidgets

        info["ipywidgets"] = ipywidgets.__version__
    except ImportError:
        info["ipywidgets"] = "not installed (the live explorers need it)"
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def cpu_name() -> str:
    """The processor's model name where the OS tells it (Linux: /proc/cpuinfo), else its architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary() -> str:
    """One line describing where a run happened, for model cards."""
    device = pick_device()
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{os.cpu_count()} cores of {cpu_name()}"
    return f"{device.type}: {where}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
