import matplotlib
import numpy as np
import pytest
import torch

from aigc_course.views import plots
from aigc_course.teaching.history import EVENTS
from aigc_course.models.vae import VAE, VAEConfig

matplotlib.use("Agg")


def test_grid_array_places_images_in_order():
    images = torch.stack([torch.full((1, 2, 2), v) for v in (0.0, 0.5, 1.0)])
    grid = plots.grid_array(images, nrow=2, pad=1)
    assert grid.shape == (1 + 2 * 3, 1 + 2 * 3)
    assert grid[1, 1] == 0.0 and grid[1, 4] == 0.5 and grid[4, 1] == 1.0
    with pytest.raises(ValueError, match="shape"):
        plots.grid_array(np.zeros((2, 2)))


def test_save_png_writes_scaled_image(tmp_path):
    from PIL import Image
    path = plots.save_png(np.eye(3), tmp_path / "x.png", scale=2)
    img = np.asarray(Image.open(path))
    assert img.shape == (6, 6) and img[0, 0] == 255 and img[0, 2] == 0


def test_figures_have_titles_and_labels():
    ax = plots.latent_scatter(torch.randn(50, 2), np.arange(50) % 10)
    assert ax.get_xlabel() == "$z_1$" and ax.get_title()
    with pytest.raises(ValueError, match="2-D codes"):
        plots.latent_scatter(torch.randn(5, 3), np.zeros(5))
    ax = plots.latent_manifold(VAE(VAEConfig(hidden=16)), n=4)
    assert ax.get_images()[0].get_array().shape == (4 * 28, 4 * 28)
    ax = plots.loss_curves({"train": [3, 2, 1], "test": [(1, 3.5), (3, 1.5)]})
    assert len(ax.get_lines()) == 2
    ax = plots.timeline(EVENTS)
    assert len(ax.texts) == len(EVENTS)
    matplotlib.pyplot.close("all")


def test_timeline_is_in_chronological_order():
    dates = [e.date for e in EVENTS]
    assert dates == sorted(dates)  # ISO dates sort as strings
    assert {e.family for e in EVENTS} <= set(plots.FAMILY_COLOURS)


def test_timeline_events_have_well_formed_dates_and_sources():
    import re
    for event in EVENTS:
        assert re.fullmatch(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?", event.date), event
        assert event.year == int(event.date[:4]) and event.reference.strip(), event
    assert EVENTS[0].year == 1966 and EVENTS[-1].year == 2025
    names = {e.name for e in EVENTS}
    assert {"ERNIE Bot", "Qwen", "DeepSeek-V3", "DeepSeek-R1", "Kling", "HunyuanVideo"} <= names
    assert all(name.isascii() for name in names)  # the figure's default font has no CJK glyphs


def test_latent_manifold_shows_grey_values_not_logits():
    """Each tile is the decoder's mean sigmoid(logits): with logits = z_1 on every pixel, the columns of
    tiles at z_1 = -3, 0, 3 are 1 / (1 + e^3) = 0.0474, 0.5 and 0.9526."""
    from torch import nn

    model = VAE(VAEConfig(latent_dim=2, hidden=16))
    linear = nn.Linear(2, 28 * 28, bias=False)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:, 0] = 1.0
    model.decoder = nn.Sequential(linear, nn.Unflatten(1, (1, 28, 28)))
    shown = np.asarray(plots.latent_manifold(model, n=3, span=3.0).get_images()[0].get_array())
    assert shown.shape == (3 * 28, 3 * 28)
    for col, grey in enumerate((0.0474, 0.5, 0.9526)):
        assert np.allclose(shown[:, col * 28:(col + 1) * 28], grey, atol=1e-4), col
    matplotlib.pyplot.close("all")
