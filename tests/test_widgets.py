import numpy as np
import pytest
import torch

from aigc_course.views import widgets
from aigc_course.models.vae import VAE, VAEConfig


def test_latent_map_puts_the_origin_in_the_middle():
    canvas = widgets.latent_map(np.array([[0.0, 0.0], [2.9, 2.9]]), np.array([1, 2]), span=3.0, size=60)
    assert canvas.shape == (60, 60, 3)
    assert (canvas[30, 30] != 255).any()      # origin -> centre
    assert (canvas[1, 59] != 255).any()       # top right: z_2 grows upwards
    assert (canvas[58, 1] == 255).all()


def test_explorer_decodes_on_the_fly():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=32))
    explorer = widgets.LatentExplorer(model, torch.randn(100, 2), np.arange(100) % 10)
    before = bytes(explorer.digit_image.value)
    assert before.startswith(b"\x89PNG")
    explorer.set(2.0, -1.5)
    assert bytes(explorer.digit_image.value) != before
    expected = widgets.digit_png(torch.sigmoid(model.decode(torch.tensor([[2.0, -1.5]]))))
    assert bytes(explorer.digit_image.value) == expected
    assert "+2.00, -1.50" in explorer.status.value and explorer.last_update_ms > 0


def test_explorer_rejects_a_model_without_a_2d_latent():
    with pytest.raises(ValueError, match="2-D latent"):
        widgets.LatentExplorer(VAE(VAEConfig(latent_dim=16, hidden=32)))


def test_interpolation_explorer_ends_match_the_codes():
    torch.manual_seed(0)
    model = VAE(VAEConfig(arch="conv", latent_dim=4, hidden=32))
    a, b = torch.rand(1, 28, 28), torch.rand(1, 28, 28)
    explorer = widgets.InterpolationExplorer(model, a, b)
    explorer.t.value = 0.0
    at_start = bytes(explorer.middle.value)
    explorer.t.value = 1.0
    with torch.no_grad():
        mu_b = model.encode(b[None])[0]
        assert bytes(explorer.middle.value) == widgets.digit_png(torch.sigmoid(model.decode(mu_b)), 112)
    assert at_start != bytes(explorer.middle.value)


def test_committed_notebooks_are_tidy():
    """Widget outputs carry a readable fallback, and no stale widget state or timestamps are stored."""
    from pathlib import Path

    import nbformat

    sys_path = Path(__file__).resolve().parents[1]
    import importlib.util
    spec = importlib.util.spec_from_file_location("tidy", sys_path / "scripts" / "tidy_notebooks.py")
    tidy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tidy)
    for path in sorted((sys_path / "notebooks").glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata, path.name
        for cell in nb.cells:
            assert "execution" not in cell.metadata, path.name
            for output in cell.get("outputs", []):
                if tidy.WIDGET_MIME in output.get("data", {}):
                    assert output["data"]["text/plain"] == tidy.WIDGET_FALLBACK, path.name


def test_every_explorer_displays_as_its_widget():
    """An explorer left as the last expression of a cell must show its controls, not a repr."""
    import inspect

    from aigc_course.views import widgets

    explorers = [c for name, c in inspect.getmembers(widgets, inspect.isclass)
                 if c.__module__ == widgets.__name__ and name.endswith(("Explorer", "Scrubber", "Replay"))]
    assert len(explorers) >= 8
    missing = [c.__name__ for c in explorers if "_ipython_display_" not in vars(c)]
    assert not missing, f"explorers without _ipython_display_: {missing}"
