"""Lesson 01's explorers: a 2-D VAE's latent plane under two sliders, and a walk between two codes."""
from __future__ import annotations

import numpy as np
import torch

from aigc_course.core.i18n import tr
from aigc_course.views.plots import DIGIT_COLOURS
from aigc_course.views.widgets.base import Explorer, digit_png, png_bytes, to_pixels


def latent_map(z: np.ndarray, labels: np.ndarray, span: float, size: int = 256) -> np.ndarray:
    """Rasterise 2-D codes coloured by label into an RGB (size, size, 3) uint8 map of [-span, span]^2."""
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    cols, rows = to_pixels(z, span, size)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    colours = (np.array([DIGIT_COLOURS(int(d))[:3] for d in labels]) * 255).astype(np.uint8)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):  # 2x2 dots
        canvas[np.clip(rows[inside] + dr, 0, size - 1), np.clip(cols[inside] + dc, 0, size - 1)] = colours[inside]
    return canvas


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


class LatentExplorer(Explorer):
    """Two sliders over a 2-D VAE's latent plane; shows the map and the decoded digit.

    Parameters: ``model`` a VAE with ``latent_dim == 2``; ``z`` and ``labels``
    the encoded test digits for the background map (optional); ``span`` the
    slider range [-span, span]. The left panel (drawn once) shows where the
    test digits landed, with a cross-hair at the current z; the right panel is
    the decoder's mean for that z. ``explorer.set(z1, z2)`` moves it from code.
    """

    timing_label = "decode + draw"

    def __init__(self, model, z=None, labels=None, span: float = 3.0, map_size: int = 256):
        import ipywidgets as w

        if getattr(model, "latent_dim", None) != 2:
            raise ValueError(f"LatentExplorer needs a VAE with a 2-D latent, got latent_dim="
                             f"{getattr(model, 'latent_dim', None)}: load 'vae_mlp2d'")
        super().__init__()
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
        self._redraw_on(self.z1, self.z2)
        key = " ".join(f'<span style="color:{_hex(DIGIT_COLOURS(d))}">&#9632;{d}</span>' for d in range(10))
        self._show(
            w.HBox([w.VBox([w.HTML(tr("<b>latent plane</b> (test digits, coloured by label)")), self.map_image,
                            w.HTML(key)]),
                    w.VBox([w.HTML(tr("<b>decoder output</b> for this z")), self.digit_image])]),
            self.z1, self.z2)

    @torch.no_grad()
    def render(self, z1: float, z2: float) -> tuple[bytes, bytes]:
        """Decode z = (z1, z2) and draw the cross-hair: (map PNG, digit PNG)."""
        z = torch.tensor([[z1, z2]], dtype=torch.float32, device=self.device)
        canvas = self.background.copy()
        col, row = (int(v[0]) for v in to_pixels(np.array([[z1, z2]]), self.span, self.map_size))
        col, row = min(max(col, 0), self.map_size - 1), min(max(row, 0), self.map_size - 1)
        canvas[row, :] = canvas[:, col] = (0, 0, 0)
        return png_bytes(canvas), digit_png(self.model.decode_mean(z))

    def draw(self) -> str:
        self.map_image.value, self.digit_image.value = self.render(self.z1.value, self.z2.value)
        return f"z = ({self.z1.value:+.2f}, {self.z2.value:+.2f})"

    def set(self, z1: float, z2: float) -> None:
        """Move both sliders (one redraw per slider, as a user's drag would cause)."""
        self.z1.value, self.z2.value = z1, z2


class InterpolationExplorer(Explorer):
    """A slider t in [0, 1] walking the straight line between the codes of two images.

    Works with any VAE: ``a`` and ``b`` are (1, 28, 28) images; their posterior
    means are interpolated, z(t) = (1 - t) z_a + t z_b, and decoded live.
    """

    timing_label = "decode + draw"

    def __init__(self, model, a: torch.Tensor, b: torch.Tensor):
        import ipywidgets as w

        super().__init__()
        self.model = model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            mu, _ = model.encode(torch.stack([a, b]).to(device))
        self.z_a, self.z_b = mu[0:1], mu[1:2]
        self.t = w.FloatSlider(description="t", min=0, max=1, step=0.02, value=0.5, layout=w.Layout(width="400px"))
        self.ends = [w.Image(value=digit_png(x, 112), format="png") for x in (a, b)]
        self.middle = w.Image(format="png")
        self._redraw_on(self.t)
        self._show(w.HBox([w.VBox([w.HTML(tr("start")), self.ends[0]]),
                           w.VBox([w.HTML(tr("decoded z(t)")), self.middle]),
                           w.VBox([w.HTML(tr("end")), self.ends[1]])]), self.t)

    @torch.no_grad()
    def draw(self) -> str:
        t = self.t.value
        self.middle.value = digit_png(self.model.decode_mean((1 - t) * self.z_a + t * self.z_b), 112)
        return f"t = {t:.2f}"
