"""The live explorers: the Explorer base (display, timing, errors), the PNG helpers, and each explorer on
hand-made models whose images are known in advance (so no expected value comes from the code under test)."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from aigc_course.models.vae import VAE, VAEConfig
from aigc_course.views import widgets
from aigc_course.views.widgets import base


def decoded(png: bytes) -> np.ndarray:
    """PNG bytes -> the uint8 array a browser would show."""
    assert png.startswith(b"\x89PNG")
    return np.asarray(Image.open(io.BytesIO(png)))


# --------------------------------------------------------------------------- PNG helpers, on hand-made arrays

def test_png_bytes_round_trips_grey_and_rgb():
    grey = np.array([[0, 255], [128, 7]], dtype=np.uint8)
    rgb = np.zeros((3, 5, 3), dtype=np.uint8)
    rgb[1, 4] = (10, 20, 30)
    assert decoded(widgets.png_bytes(grey)).tolist() == [[0, 255], [128, 7]]
    back = decoded(widgets.png_bytes(rgb))
    assert back.shape == (3, 5, 3) and back[1, 4].tolist() == [10, 20, 30] and back.sum() == 60


def test_digit_png_enlarges_with_crisp_pixels():
    image = torch.zeros(1, 28, 28)
    image[0, 0, 0], image[0, 27, 27], image[0, 5, 9] = 1.0, 0.5, 0.2
    shown = decoded(widgets.digit_png(image, size=56))          # each pixel becomes a 2x2 block
    assert shown.shape == (56, 56)
    assert (shown[:2, :2] == 255).all() and (shown[54:, 54:] == 128).all()   # 0.5 * 255 = 127.5 -> 128
    assert (shown[10:12, 18:20] == 51).all()                     # 0.2 * 255 = 51
    assert shown.sum() == 4 * (255 + 128 + 51)


def test_grid_png_tiles_in_order_with_white_gaps():
    images = torch.stack([torch.ones(1, 28, 28), torch.zeros(1, 28, 28)])
    grid = decoded(widgets.grid_png(images, nrow=2, scale=1))
    assert grid.shape == (2 + 28 + 2, 2 + 2 * (28 + 2))         # pad 2 around and between
    assert (grid[2:30, 2:30] == 255).all() and (grid[2:30, 32:60] == 0).all()
    assert (grid[0:2] == 255).all()                               # the gaps are white
    assert decoded(widgets.grid_png(images, nrow=1, scale=3)).shape == (3 * (2 + 2 * 30), 3 * 32)


def test_latent_map_puts_the_origin_in_the_middle():
    canvas = widgets.latent_map(np.array([[0.0, 0.0], [2.9, 2.9]]), np.array([1, 2]), span=3.0, size=60)
    assert canvas.shape == (60, 60, 3)
    assert (canvas[30, 30] != 255).any()      # origin -> centre
    assert (canvas[1, 59] != 255).any()       # top right: z_2 grows upwards
    assert (canvas[58, 1] == 255).all()


# --------------------------------------------------------------------------- the Explorer base

class Counter(base.Explorer):
    """The smallest explorer: one slider; ``draw`` fails with ``fail_with`` when it is set."""

    timing_label = "count"

    def __init__(self, fail_with: Exception | None = None):
        import ipywidgets as w

        super().__init__()
        self.fail_with = fail_with
        self.n = w.IntSlider(description="n", value=0)
        self.draws = 0
        self._redraw_on(self.n)
        self._show(self.n)

    def draw(self) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.draws += 1
        return f"n = {self.n.value}"


def test_base_lays_out_the_controls_above_the_status_line_and_displays_the_widget(monkeypatch):
    import ipywidgets as w
    import IPython.display

    counter = Counter()
    assert isinstance(counter.widget, w.VBox)
    assert counter.widget.children == (counter.n, counter.status)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    counter._ipython_display_()
    assert shown == [counter.widget]


def test_each_update_is_timed_and_the_time_is_shown(monkeypatch):
    counter = Counter()
    clock = iter([100.0, 100.0123])  # the base reads the clock before and after draw: 12.3 ms
    monkeypatch.setattr(base.time, "perf_counter", lambda: next(clock))
    counter.n.value = 3                                    # an observer runs update()
    assert counter.status.value == "n = 3 &nbsp; count: 12.3 ms"
    assert counter.last_update_ms == pytest.approx(12.3)
    assert counter.draws == 2                              # the first frame, then this change
    counter.in_seconds = True
    assert counter.format_time(2540.0) == "2.5 s"


def test_an_error_in_a_live_update_shows_in_the_status_line():
    counter = Counter()
    before = counter.status.value
    counter.fail_with = RuntimeError("the model is <gone>")
    counter.n.value = 4                                    # what a slider drag does: no exception escapes
    assert "RuntimeError: the model is &lt;gone&gt;" in counter.status.value   # escaped, never raw HTML
    assert 'class="explorer-error"' in counter.status.value and "n = 4" not in counter.status.value
    assert counter.status.value != before and counter.last_error is counter.fail_with
    counter.fail_with = ValueError("pick a digit 0..9")    # our own errors name the fix: no type name needed
    counter.n.value = 5
    assert "pick a digit 0..9" in counter.status.value and "ValueError" not in counter.status.value
    counter.fail_with = None                               # the next good update clears the error
    counter.n.value = 6
    assert counter.status.value.startswith("n = 6") and counter.last_error is None


def test_an_error_while_building_raises_in_the_cell():
    with pytest.raises(RuntimeError, match="broken"):
        Counter(fail_with=RuntimeError("broken"))


def test_every_explorer_is_an_explorer():
    """Every explorer the package exports inherits display, timing and errors from the one base."""
    import inspect

    explorers = {name for name, c in inspect.getmembers(widgets, inspect.isclass)
                 if name.endswith(("Explorer", "Scrubber", "Replay")) and c is not base.Explorer}
    assert explorers == {"LatentExplorer", "InterpolationExplorer", "ToyGANReplay", "GANExplorer",
                         "SamplingExplorer", "StyleExplorer", "TimestepScrubber", "GuidanceExplorer",
                         "PromptExplorer", "ChatExplorer"}
    for name in explorers:
        cls = getattr(widgets, name)
        assert issubclass(cls, base.Explorer) and "draw" in vars(cls), name
        assert "_ipython_display_" not in vars(cls), f"{name} should inherit its display from Explorer"


# --------------------------------------------------------------------------- lesson 01, on hand-made VAEs

def _left_right_vae() -> VAE:
    """A 2-D VAE whose decoder's logits are +z_1 on the left half of the image and -z_1 on the right."""
    model = VAE(VAEConfig(latent_dim=2, hidden=16))
    sign = torch.ones(28, 28)
    sign[:, 14:] = -1
    linear = nn.Linear(2, 28 * 28, bias=False)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:, 0] = sign.flatten()
    model.decoder = nn.Sequential(linear, nn.Unflatten(1, (1, 28, 28)))
    return model


def test_latent_explorer_shows_the_decoder_mean_and_the_cross_hair():
    explorer = widgets.LatentExplorer(_left_right_vae(), torch.randn(100, 2), np.arange(100) % 10)
    digit = decoded(bytes(explorer.digit_image.value))
    assert digit.shape == (196, 196) and (digit == 128).all()      # z = 0: sigmoid(0) = 0.5 -> 127.5 -> 128
    explorer.set(2.0, -1.5)
    digit = decoded(bytes(explorer.digit_image.value))
    assert (digit[:, :98] == 225).all() and (digit[:, 98:] == 30).all()   # 255 sigmoid(+-2) = 224.6, 30.4
    canvas = decoded(bytes(explorer.map_image.value))
    # the cross-hair at z = (2, -1.5) on [-3, 3]^2 in 256 px: column floor(5/6 * 256) = 213, row floor(4.5/6 * 256) = 192
    assert (canvas[:, 213] == 0).all() and (canvas[192, :] == 0).all()
    assert "z = (+2.00, -1.50) &nbsp; decode + draw: " in explorer.status.value and explorer.last_update_ms > 0


def test_latent_explorer_rejects_a_model_without_a_2d_latent():
    with pytest.raises(ValueError, match="2-D latent"):
        widgets.LatentExplorer(VAE(VAEConfig(latent_dim=16, hidden=32)))


def _mean_pixel_vae() -> VAE:
    """A 1-D VAE: mu = the top-left pixel's grey value, and the decoder's logits are 4 z - 2 on every pixel."""
    model = VAE(VAEConfig(latent_dim=1, hidden=16))
    encoder, decoder = nn.Linear(28 * 28, 2), nn.Linear(1, 28 * 28)
    with torch.no_grad():
        encoder.weight.zero_(), encoder.bias.zero_()
        encoder.weight[0, 0] = 1.0                                 # mu = x[0, 0]; logvar = 0
        decoder.weight.fill_(4.0), decoder.bias.fill_(-2.0)
    model.encoder = nn.Sequential(nn.Flatten(), encoder)
    model.decoder = nn.Sequential(decoder, nn.Unflatten(1, (1, 28, 28)))
    return model


def test_interpolation_explorer_walks_from_one_code_to_the_other():
    black, white = torch.zeros(1, 28, 28), torch.ones(1, 28, 28)  # codes z = 0 and z = 1
    explorer = widgets.InterpolationExplorer(_mean_pixel_vae(), black, white)
    assert (decoded(bytes(explorer.ends[0].value)) == 0).all() and (decoded(bytes(explorer.ends[1].value)) == 255).all()
    expected = {0.0: 30, 0.25: 69, 0.5: 128, 1.0: 225}            # 255 sigmoid(4t - 2)
    for t, grey in expected.items():
        explorer.t.value = t
        middle = decoded(bytes(explorer.middle.value))
        assert middle.shape == (112, 112) and (middle == grey).all(), t
    assert explorer.status.value.startswith("t = 1.00 &nbsp; decode + draw: ")
    assert len(explorer.widget.children) == 3 and explorer.widget.children[-1] is explorer.status


# --------------------------------------------------------------------------- lesson 04, on a tiny U-Net

def _tiny_unet():
    from aigc_course.models.diffusion import UNet, UNetConfig

    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=(8, 8, 16), time_dim=16, attention_heads=2, dropout=0.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.1)
    return model


def test_timestep_scrubber_shows_each_step_and_ends_on_the_sample():
    from aigc_course.models.diffusion import sample

    model = _tiny_unet()
    scrubber = widgets.TimestepScrubber(model, label=3, steps=4, seed=2)
    assert scrubber.timesteps == [750, 500, 250, 0, -1]           # DDIM-4, "leading" spacing, then the sample
    assert "step 0 of 4 (t = 750 of 1000)" in scrubber.status.value and scrubber.last_sample_ms > 0
    first = bytes(scrubber.x_image.value)
    scrubber.step.value = 2
    assert "step 2 of 4 (t = 250 of 1000)" in scrubber.status.value and bytes(scrubber.x_image.value) != first
    scrubber.step.value = 4
    final = sample(model, 1, 3, steps=4, generator=torch.Generator().manual_seed(2))[0, 0]
    shown = decoded(bytes(scrubber.x_image.value))
    assert shown.shape == (168, 168) and "final sample" in scrubber.status.value
    assert (shown[::6, ::6] == np.rint(final.numpy() * 255)).all()          # 168 px = 6 x 28
    assert bytes(scrubber.x_image.value) == bytes(scrubber.x0_image.value)
    scrubber.seed.value = 3                                        # a new trajectory, drawn at the same step
    assert decoded(bytes(scrubber.x_image.value)).tolist() != shown.tolist()


class AlwaysSeven(nn.Module):
    """A 'classifier' that reads every image as a 7."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.eye(10)[7].expand(len(x), 10) + 0 * self.dummy


def test_guidance_explorer_counts_what_the_classifier_reads():
    explorer = widgets.GuidanceExplorer(_tiny_unet(), AlwaysSeven(), label=7, n=4, steps=3)
    assert explorer.status.value.startswith("w = 0.0: 4 of 4 read as a 7 by the digit classifier")
    assert "DDIM-3 + draw: " in explorer.status.value
    assert decoded(bytes(explorer.image.value)).shape == (3 * 32, 3 * (2 + 4 * 30))   # one row of 4, scale 3
    plain = bytes(explorer.image.value)
    explorer.guidance.value = 2.0
    assert explorer.status.value.startswith("w = 2.0: 4 of 4") and bytes(explorer.image.value) != plain
    explorer.label.value = 3
    assert explorer.status.value.startswith("w = 2.0: 0 of 4 read as a 3")


# --------------------------------------------------------------------------- notebooks

def test_committed_notebooks_are_tidy():
    """Widget outputs carry a readable fallback, and no stale widget state or timestamps are stored."""
    import importlib.util
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("tidy", root / "scripts" / "tidy_notebooks.py")
    tidy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tidy)
    for path in sorted((root / "notebooks").glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata, path.name
        for cell in nb.cells:
            assert "execution" not in cell.metadata, path.name
            for output in cell.get("outputs", []):
                if tidy.WIDGET_MIME in output.get("data", {}):
                    assert output["data"]["text/plain"] == tidy.WIDGET_FALLBACK, path.name
