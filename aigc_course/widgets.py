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


# --- Lesson 04: diffusion explorers ---------------------------------------------------------------

def _grid_png(images: torch.Tensor, nrow: int, scale: int = 3) -> bytes:
    """Images (N, 1, 28, 28) in [0, 1] as one enlarged PNG grid."""
    from aigc_course.plots import grid_array

    grid = np.rint(np.clip(grid_array(images, nrow=nrow), 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    return png_bytes(np.asarray(img))


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] (x_t may overshoot) -> [0, 1] for display."""
    return ((x.clamp(-1, 1) + 1) / 2).cpu()


class TimestepScrubber:
    """Scrub along one sampling trajectory: x_t and the model's prediction of x_0 at every step.

    Picking a digit or a seed runs the sampler once (DDIM, ``steps`` network calls,
    recording every step through ``sample``'s callback); moving the step slider
    then only redraws. Early in the trajectory x_t is nearly pure noise while the
    predicted x_0 is already a blurry average digit; it sharpens as t falls.
    """

    def __init__(self, model, label: int = 7, steps: int = 50, seed: int = 0):
        import ipywidgets as w

        self.model, self.steps = model.eval(), steps
        self.label = w.Dropdown(options=list(range(10)), value=label, description="digit",
                                layout=w.Layout(width="160px"))
        self.seed = w.BoundedIntText(value=seed, min=0, max=10_000, description="seed", layout=w.Layout(width="160px"))
        self.step = w.IntSlider(value=0, min=0, max=steps, description="step", continuous_update=True,
                                layout=w.Layout(width="420px"))
        self.x_image, self.x0_image = w.Image(format="png"), w.Image(format="png")
        self.status = w.HTML()
        self.last_update_ms = self.last_sample_ms = 0.0
        self.label.observe(lambda _: self.resample(), names="value")
        self.seed.observe(lambda _: self.resample(), names="value")
        self.step.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.label, self.seed]),
                              w.HBox([w.VBox([w.HTML("<b>x<sub>t</sub></b> (what the sampler holds)"), self.x_image]),
                                      w.VBox([w.HTML("<b>predicted x<sub>0</sub></b> (the model's guess)"),
                                              self.x0_image])]),
                              self.step, self.status])
        self.resample()

    @torch.no_grad()
    def resample(self) -> float:
        """Run the sampler for the current digit and seed, keep every x_t and x0_hat; return milliseconds."""
        from aigc_course.models.diffusion import sample

        start = time.perf_counter()
        self.timesteps, self.xs, self.x0s = [], [], []

        def record(t, x, x0):
            self.timesteps.append(t)
            self.xs.append(_to_unit(x[0]))
            self.x0s.append(_to_unit(x0[0]))
        final = sample(self.model, 1, self.label.value, steps=self.steps,
                       generator=torch.Generator().manual_seed(self.seed.value), callback=record)
        self.timesteps.append(-1)
        self.xs.append(final[0])
        self.x0s.append(final[0])
        self.last_sample_ms = (time.perf_counter() - start) * 1000
        self.update()
        return self.last_sample_ms

    def update(self) -> float:
        """Redraw the two images for the slider's step; return milliseconds."""
        start = time.perf_counter()
        i = self.step.value
        self.x_image.value, self.x0_image.value = digit_png(self.xs[i], 168), digit_png(self.x0s[i], 168)
        self.last_update_ms = (time.perf_counter() - start) * 1000
        t = self.timesteps[i]
        where = "final sample x<sub>0</sub>" if t < 0 else f"t = {t} of 1000"
        self.status.value = (f"step {i} of {self.steps} ({where}) &nbsp; DDIM-{self.steps} trajectory sampled in "
                             f"{self.last_sample_ms:.0f} ms, redraw {self.last_update_ms:.1f} ms")
        return self.last_update_ms

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class GuidanceExplorer:
    """Classifier-free guidance live: pick a digit and a guidance scale w, see n samples drawn on the fly.

    The same seed (the same starting noise) is used for every w, so what changes
    between two settings is the guidance alone. Under the grid: how many samples
    the digit classifier reads as the requested digit (fidelity) and the mean
    pixel distance between samples (diversity).
    """

    def __init__(self, model, classifier, label: int = 7, guidance: float = 0.0, n: int = 12, steps: int = 20,
                 seed: int = 0):
        import ipywidgets as w

        self.model, self.classifier, self.n, self.steps, self.seed = model.eval(), classifier.eval(), n, steps, seed
        self.label = w.ToggleButtons(options=list(range(10)), value=label, description="digit",
                                     style={"button_width": "32px"})
        self.guidance = w.FloatSlider(value=guidance, min=0.0, max=8.0, step=0.5, description="guidance w",
                                      continuous_update=False, layout=w.Layout(width="420px"))
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self.last_update_ms = 0.0
        for control in (self.label, self.guidance):
            control.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox([self.label, self.guidance, self.image, self.status])
        self.update()

    @torch.no_grad()
    def render(self, label: int, guidance: float) -> tuple[torch.Tensor, float, float]:
        """(samples, fraction classified as ``label``, mean pairwise pixel distance) for one setting."""
        from aigc_course.models.diffusion import sample

        images = sample(self.model, self.n, label, steps=self.steps, guidance=guidance,
                        generator=torch.Generator().manual_seed(self.seed))
        device = next(self.classifier.parameters()).device
        hits = (self.classifier(images.to(device)).argmax(1).cpu() == label).float().mean().item()
        flat = images.flatten(1)
        diversity = torch.pdist(flat).mean().item() / flat.shape[1] ** 0.5
        return images, hits, diversity

    def update(self) -> float:
        start = time.perf_counter()
        images, hits, diversity = self.render(self.label.value, self.guidance.value)
        self.image.value = _grid_png(images, nrow=min(self.n, 6))
        self.last_update_ms = (time.perf_counter() - start) * 1000
        self.status.value = (f"w = {self.guidance.value:.1f}: {round(hits * self.n)} of {self.n} read as a "
                             f"{self.label.value} by the digit classifier; diversity (RMS pixel distance between "
                             f"samples) {diversity:.3f} &nbsp; DDIM-{self.steps}, {self.last_update_ms:.0f} ms")
        return self.last_update_ms

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
