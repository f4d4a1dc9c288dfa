"""Live explorers built on ipywidgets: every update decodes on the fly.

``LatentExplorer`` puts a 2-D VAE's latent plane under two sliders: the left
panel is a map of where the test digits landed (drawn once), with a cross-hair
at the current z; the right panel is the decoder's output for that z. Images
are sent as small PNGs (PIL) rather than redrawn with Matplotlib, which keeps an
update to a few milliseconds on a CPU.
"""
from __future__ import annotations

import io
import time

import numpy as np
import torch
from PIL import Image

from aigc_course.plots import DIGIT_COLOURS


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def digit_png(probabilities: torch.Tensor, size: int = 196) -> bytes:
    """A (1, 28, 28) or (28, 28) grey image in [0, 1] as an enlarged PNG (nearest neighbour)."""
    pixels = probabilities.detach().cpu().reshape(28, 28).numpy()
    img = Image.fromarray(np.rint(pixels * 255).astype(np.uint8)).resize((size, size), Image.NEAREST)
    return png_bytes(np.asarray(img))


def latent_map(z: np.ndarray, labels: np.ndarray, span: float, size: int = 256) -> np.ndarray:
    """Rasterise 2-D codes coloured by label into an RGB (size, size, 3) uint8 map of [-span, span]^2."""
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    cols, rows = _to_pixels(z, span, size)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    colours = (np.array([DIGIT_COLOURS(int(d))[:3] for d in labels]) * 255).astype(np.uint8)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):  # 2x2 dots
        canvas[np.clip(rows[inside] + dr, 0, size - 1), np.clip(cols[inside] + dc, 0, size - 1)] = colours[inside]
    return canvas


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


def _to_pixels(z: np.ndarray, span: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.atleast_2d(z)
    cols = np.floor((z[:, 0] + span) / (2 * span) * size).astype(int)
    rows = np.floor((span - z[:, 1]) / (2 * span) * size).astype(int)  # z_2 grows upwards
    return cols, rows


class LatentExplorer:
    """Two sliders over a 2-D VAE's latent plane; shows the map and the decoded digit.

    Parameters: ``model`` a VAE with ``latent_dim == 2``; ``z`` and ``labels``
    the encoded test digits for the background map (optional); ``span`` the
    slider range [-span, span]. Display it by leaving it last in a cell, or
    ``display(explorer.widget)``. ``explorer.set(z1, z2)`` moves it from code.
    """

    def __init__(self, model, z=None, labels=None, span: float = 3.0, map_size: int = 256):
        import ipywidgets as w

        if getattr(model, "latent_dim", None) != 2:
            raise ValueError(f"LatentExplorer needs a VAE with a 2-D latent, got latent_dim="
                             f"{getattr(model, 'latent_dim', None)}: load 'vae_mlp2d'")
        self.model, self.span, self.map_size = model.eval(), span, map_size
        self.device = next(model.parameters()).device
        z = np.zeros((0, 2)) if z is None else (z.detach().cpu().numpy() if torch.is_tensor(z) else np.asarray(z))
        labels = np.zeros(len(z), int) if labels is None else np.asarray(labels)
        self.background = latent_map(z, labels, span, map_size)
        slider = dict(min=-span, max=span, step=0.05, value=0.0, continuous_update=True,
                      layout=w.Layout(width="300px"))
        self.z1 = w.FloatSlider(description="z₁", **slider)
        self.z2 = w.FloatSlider(description="z₂", **slider)
        self.map_image = w.Image(format="png", width=map_size, height=map_size)
        self.digit_image = w.Image(format="png", width=196, height=196)
        self.status = w.HTML()
        self.last_update_ms = 0.0
        for s in (self.z1, self.z2):
            s.observe(self._on_change, names="value")
        key = " ".join(f'<span style="color:{_hex(DIGIT_COLOURS(d))}">&#9632;{d}</span>' for d in range(10))
        self.widget = w.VBox([
            w.HBox([w.VBox([w.HTML("<b>latent plane</b> (test digits, coloured by label)"), self.map_image,
                            w.HTML(key)]),
                    w.VBox([w.HTML("<b>decoder output</b> for this z"), self.digit_image])]),
            self.z1, self.z2, self.status])
        self.update()

    def _on_change(self, _change) -> None:
        self.update()

    @torch.no_grad()
    def render(self, z1: float, z2: float) -> tuple[bytes, bytes]:
        """Decode z = (z1, z2) and draw the cross-hair: (map PNG, digit PNG)."""
        z = torch.tensor([[z1, z2]], dtype=torch.float32, device=self.device)
        digit = torch.sigmoid(self.model.decode(z))
        canvas = self.background.copy()
        col, row = (int(v[0]) for v in _to_pixels(np.array([[z1, z2]]), self.span, self.map_size))
        col, row = min(max(col, 0), self.map_size - 1), min(max(row, 0), self.map_size - 1)
        canvas[row, :] = canvas[:, col] = (0, 0, 0)
        return png_bytes(canvas), digit_png(digit)

    def update(self) -> float:
        """Redraw for the sliders' current values; return the time it took in milliseconds."""
        start = time.perf_counter()
        self.map_image.value, self.digit_image.value = self.render(self.z1.value, self.z2.value)
        self.last_update_ms = (time.perf_counter() - start) * 1000
        self.status.value = (f"z = ({self.z1.value:+.2f}, {self.z2.value:+.2f}) &nbsp; "
                             f"decode + draw: {self.last_update_ms:.1f} ms")
        return self.last_update_ms

    def set(self, z1: float, z2: float) -> None:
        """Move both sliders (one redraw per slider, as a user's drag would cause)."""
        self.z1.value, self.z2.value = z1, z2

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class InterpolationExplorer:
    """A slider t in [0, 1] walking the straight line between the codes of two images.

    Works with any VAE: ``a`` and ``b`` are (1, 28, 28) images; their posterior
    means are interpolated, z(t) = (1 - t) z_a + t z_b, and decoded live.
    """

    def __init__(self, model, a: torch.Tensor, b: torch.Tensor):
        import ipywidgets as w

        self.model = model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            mu, _ = model.encode(torch.stack([a, b]).to(device))
        self.z_a, self.z_b = mu[0:1], mu[1:2]
        self.t = w.FloatSlider(description="t", min=0, max=1, step=0.02, value=0.5, layout=w.Layout(width="400px"))
        self.ends = [w.Image(value=digit_png(x, 112), format="png") for x in (a, b)]
        self.middle = w.Image(format="png")
        self.t.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox([w.HBox([w.VBox([w.HTML("start"), self.ends[0]]),
                                      w.VBox([w.HTML("decoded z(t)"), self.middle]),
                                      w.VBox([w.HTML("end"), self.ends[1]])]), self.t])
        self.update()

    @torch.no_grad()
    def update(self) -> None:
        t = self.t.value
        self.middle.value = digit_png(torch.sigmoid(self.model.decode((1 - t) * self.z_a + t * self.z_b)), 112)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class StyleExplorer:
    """Live neural style transfer: pick content, style, the style/content ratio and the style layers.

    Every change re-runs a fast preview (``preview_size`` px, ``preview_steps`` L-BFGS evaluations,
    started from the content image); "render full size" runs the same settings at the size slider's
    value with ``full_steps`` evaluations. A progress bar follows the optimisation. The VGG19
    weights are read once; targets are recomputed for each run (they depend on the images).
    ``explorer.last_update_ms`` is the latest preview's wall time.
    """

    LAYER_CHOICES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

    def __init__(self, content: str = "chelsea", style: str = "flower", config=None, preview_size: int = 128,
                 preview_steps: int = 30, full_steps: int = 60, device=None):
        import ipywidgets as w

        from aigc_course.images import BUILTIN, CONTENT_NAMES, STYLE_NAMES
        from aigc_course.models.style import StyleConfig

        self.config = config or StyleConfig()
        self.preview_size, self.preview_steps, self.full_steps = preview_size, preview_steps, full_steps
        self.device = device
        names = list(BUILTIN)
        self.content = w.Dropdown(options=[*CONTENT_NAMES, *[n for n in names if n not in CONTENT_NAMES]],
                                  value=content, description="content")
        self.style = w.Dropdown(options=[*STYLE_NAMES, *[n for n in names if n not in STYLE_NAMES]],
                                value=style, description="style")
        ratio = self.config.style_weight / self.config.content_weight
        self.ratio = w.FloatLogSlider(value=ratio, base=10, min=-2, max=4, step=0.25, description="style/content",
                                      continuous_update=False, readout_format=".3g",
                                      style={"description_width": "90px"}, layout=w.Layout(width="420px"))
        self.layers = [w.Checkbox(value=n in self.config.style_layers, description=n, indent=False,
                                  layout=w.Layout(width="80px")) for n in self.LAYER_CHOICES]
        self.preserve = w.Checkbox(value=self.config.preserve_color, description="preserve colour", indent=False)
        self.size = w.IntSlider(value=256, min=128, max=512, step=64, description="full size",
                                continuous_update=False, style={"description_width": "90px"})
        self.button = w.Button(description="render full size", icon="paint-brush")
        self.progress = w.IntProgress(value=0, min=0, max=preview_steps, description="optimising",
                                      layout=w.Layout(width="420px"))
        self.inputs = [w.Image(format="png", width=160) for _ in range(2)]
        self.result = w.Image(format="png", width=256)
        self.status = w.HTML()
        self.last_update_ms = 0.0
        for control in (self.content, self.style, self.ratio, self.preserve, *self.layers):
            control.observe(lambda _: self.update(), names="value")
        self.button.on_click(lambda _: self.render_full())
        self.widget = w.VBox([
            w.HBox([self.content, self.style]),
            w.HBox([self.ratio, self.preserve]),
            w.HBox([w.HTML("style layers:&nbsp;"), *self.layers]),
            w.HBox([self.size, self.button]),
            self.progress,
            w.HBox([w.VBox([w.HTML("<b>content</b>"), self.inputs[0], w.HTML("<b>style</b>"), self.inputs[1]]),
                    w.VBox([w.HTML("<b>result</b>"), self.result])]),
            self.status])
        self.update()

    def current_config(self, size: int, steps: int):
        """The StyleConfig the controls describe, at ``size`` px with ``steps`` evaluations."""
        from dataclasses import replace

        layers = tuple(c.description for c in self.layers if c.value)
        return replace(self.config, style_layers=layers, content_weight=1.0, style_weight=float(self.ratio.value),
                       preserve_color=bool(self.preserve.value), size=size, steps=steps)

    def _run(self, size: int, steps: int):
        from aigc_course.images import load_image
        from aigc_course.models.style import stylize, to_uint8

        config = self.current_config(size, steps)
        self.progress.max, self.progress.value = steps, 0
        if not config.style_layers:
            self.status.value = "choose at least one style layer"
            return None
        self.progress.bar_style = "info"

        def tick(step, _losses):
            self.progress.value = min(step, steps)

        result = stylize(self.content.value, self.style.value, config, progress=False, callback=tick,
                         device=self.device)
        self.progress.bar_style = "success"
        self.inputs[0].value = png_bytes(to_uint8(load_image(self.content.value, 160)))
        self.inputs[1].value = png_bytes(to_uint8(load_image(self.style.value, 160)))
        self.result.value = png_bytes(to_uint8(result.image))
        return result

    def update(self) -> float:
        """Run the fast preview for the current controls; return its wall time in milliseconds."""
        start = time.perf_counter()
        result = self._run(self.preview_size, self.preview_steps)
        self.last_update_ms = (time.perf_counter() - start) * 1000
        if result is not None:
            h, w = result.image.shape[-2:]
            self.status.value = (f"preview {w}x{h}, {len(result.history)} L-BFGS evaluations, "
                                 f"loss {result.final_loss:.4g}: {self.last_update_ms / 1000:.1f} s")
        return self.last_update_ms

    def render_full(self) -> float:
        """Render the current settings at the size slider's value; return seconds."""
        self.button.disabled = True
        try:
            result = self._run(int(self.size.value), self.full_steps)
        finally:
            self.button.disabled = False
        if result is None:
            return 0.0
        h, w = result.image.shape[-2:]
        self.status.value = (f"full size {w}x{h}, {len(result.history)} L-BFGS evaluations, "
                             f"loss {result.final_loss:.4g}: {result.seconds:.1f} s")
        return result.seconds

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
