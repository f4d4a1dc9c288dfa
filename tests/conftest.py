import os

import pytest
import torch

os.environ.setdefault("AIGC_DEVICE", "cpu")  # tests compare numbers: keep them on the CPU
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # reference models are built locally, never fetched
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of the shipped data folder (AIGC_DATA points at it), safe to damage."""
    import shutil

    from aigc_course.core import assets

    root = tmp_path / "data"
    shutil.copytree(assets.data_dir(), root)
    monkeypatch.setenv("AIGC_DATA", str(root))
    return root
