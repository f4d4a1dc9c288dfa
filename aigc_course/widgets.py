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


# --- Lesson 05: the sampling explorer ------------------------------------------------------------------

def token_label(tokenizer, token_id: int) -> str:
    """How a token reads in a chart: its text with spaces and newlines made visible, or its bytes in hex
    when they are not valid UTF-8 on their own (one byte of a Chinese character)."""
    raw = tokenizer.token_bytes(token_id) if hasattr(tokenizer, "token_bytes") else bytes([int(token_id)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return " ".join(f"\\x{b:02x}" for b in raw)
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def probability_bars_html(labels: list[str], probs: list[float], title: str = "") -> str:
    """A horizontal bar chart in HTML (fast to redraw): one row per token, bar width = probability."""
    import html

    rows = "".join(
        f'<tr><td style="font-family:monospace;text-align:right;padding-right:6px">{html.escape(label)}</td>'
        f'<td style="width:260px"><div style="background:#4c72b0;height:14px;width:{max(p, 0.0) * 100:.1f}%">'
        f'</div></td><td style="font-family:monospace;padding-left:6px">{p:.3f}</td></tr>'
        for label, p in zip(labels, probs))
    return (f'<div class="next-token-chart"><b>{html.escape(title)}</b>'
            f'<table style="border-collapse:collapse">{rows}</table></div>')


class SamplingExplorer:
    """Type a prompt, move temperature / top-k / top-p, see the next-token distribution, and step.

    Every change recomputes the model's next-token logits for the current text
    (one forward pass) and redraws the bar chart of the ``n_bars`` most likely
    tokens *after* temperature, top-k and top-p: tokens the filters remove drop
    to probability 0, the rest are renormalised. "Step" samples one token from
    that distribution and appends it; "Generate 20" does it twenty times.
    Works with any :class:`~aigc_course.models.gpt.GPT` and a tokenizer with
    ``encode``/``decode`` (:class:`ByteTokenizer` or :class:`GPT2Tokenizer`).
    """

    def __init__(self, model, tokenizer, prompt: str = "ROMEO:\n", n_bars: int = 12, seed: int = 0):
        import ipywidgets as w

        self.model, self.tokenizer, self.n_bars = model.eval(), tokenizer, n_bars
        self.generator = torch.Generator().manual_seed(seed)
        self.prompt = w.Textarea(value=prompt, description="prompt", layout=w.Layout(width="520px", height="70px"))
        self.temperature = w.FloatSlider(description="temperature", min=0.1, max=2.0, step=0.05, value=1.0,
                                         continuous_update=True, layout=w.Layout(width="420px"))
        self.top_k = w.IntSlider(description="top-k", min=0, max=100, value=0, continuous_update=True,
                                 layout=w.Layout(width="420px"))
        self.top_p = w.FloatSlider(description="top-p", min=0.05, max=1.0, step=0.05, value=1.0,
                                   continuous_update=True, layout=w.Layout(width="420px"))
        for s in (self.temperature, self.top_k, self.top_p):
            s.style.description_width = "90px"
        self.step_button = w.Button(description="Step", tooltip="sample one token and append it")
        self.run_button = w.Button(description="Generate 20")
        self.reset_button = w.Button(description="Reset")
        self.text = w.HTML()
        self.chart = w.HTML()
        self.status = w.HTML()
        self._gen_ids: list[int] = []
        self.last_update_ms = 0.0
        for control in (self.temperature, self.top_k, self.top_p, self.prompt):
            control.observe(self._on_change, names="value")
        self.step_button.on_click(lambda _: self.step())
        self.run_button.on_click(lambda _: self.step(20))
        self.reset_button.on_click(lambda _: self.reset())
        self.widget = w.VBox([self.prompt, self.temperature, self.top_k, self.top_p,
                              w.HBox([self.step_button, self.run_button, self.reset_button]),
                              w.HBox([self.chart, self.text]), self.status])
        self.update()

    def _on_change(self, change) -> None:
        if change["owner"] is self.prompt:
            self._gen_ids = []
        self.update()

    def context_ids(self) -> list[int]:
        return self.tokenizer.encode(self.prompt.value) + self._generated_ids

    @property
    def _generated_ids(self) -> list[int]:
        return getattr(self, "_gen_ids", [])

    @torch.no_grad()
    def distribution(self) -> torch.Tensor:
        """Next-token probabilities (vocab,) under the current temperature / top-k / top-p."""
        from aigc_course.models.gpt import next_token_distribution

        ids = self.context_ids() or [0]
        device = next(self.model.parameters()).device
        logits = self.model.next_token_logits(torch.tensor([ids], device=device))
        return next_token_distribution(logits, self.temperature.value, self.top_k.value or None,
                                       self.top_p.value)[0].cpu()

    def update(self) -> float:
        """Recompute and redraw the bar chart and the text; return the time taken in milliseconds."""
        import html

        start = time.perf_counter()
        probs = self.distribution()
        kept = int((probs > 0).sum())
        top = torch.topk(probs, min(self.n_bars, kept))
        labels = [token_label(self.tokenizer, int(i)) for i in top.indices]
        self.chart.value = probability_bars_html(labels, top.values.tolist(),
                                                 f"next token: {kept} candidate(s) left after the filters")
        prompt, gen = html.escape(self.prompt.value), html.escape(self.tokenizer.decode(self._generated_ids))
        self.text.value = (f'<pre style="white-space:pre-wrap;width:360px;margin-left:16px">{prompt}'
                           f'<b style="color:#c44e52">{gen}</b></pre>')
        self.last_update_ms = (time.perf_counter() - start) * 1000
        self.status.value = (f"T = {self.temperature.value:.2f}, top-k = {self.top_k.value or 'off'}, "
                             f"top-p = {self.top_p.value:.2f} &nbsp; forward + draw: {self.last_update_ms:.1f} ms")
        return self.last_update_ms

    def step(self, n: int = 1) -> None:
        """Sample ``n`` tokens one at a time from the current distribution and append them."""
        for _ in range(n):
            token = int(torch.multinomial(self.distribution(), 1, generator=self.generator))
            self._gen_ids = self._generated_ids + [token]
        self.update()

    def reset(self) -> None:
        self._gen_ids = []
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
