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

from aigc_course.views.plots import DIGIT_COLOURS


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


# --------------------------------------------------------------------------- lesson 02: GANs

def _surface_rgb(surface: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map a (G, G) array to RGB: blue where D says "fake" (low), red where it says "real" (high)."""
    t = np.clip((surface - lo) / max(hi - lo, 1e-8), 0, 1)[..., None]
    fake, real = np.array([120, 160, 235], float), np.array([240, 140, 120], float)
    white = np.array([250, 250, 250], float)
    rgb = np.where(t < 0.5, fake + (white - fake) * (t / 0.5), white + (real - white) * ((t - 0.5) / 0.5))
    return rgb.astype(np.uint8)


def toy_frame(snapshot, centres: torch.Tensor, span: float, size: int = 300,
              surface_range: tuple[float, float] | None = None) -> np.ndarray:
    """One frame of the toy GAN replay as an RGB (size, size, 3) uint8 array.

    Background: the discriminator's output over [-span, span]^2 (blue = "fake",
    red = "real"; for WGAN the critic score, scaled to this frame). Black dots:
    generated samples; green rings: the 8 true modes.
    """
    surface = snapshot.surface.numpy()
    lo, hi = surface_range or (float(surface.min()), float(surface.max()))
    img = Image.fromarray(_surface_rgb(surface, lo, hi)).resize((size, size), Image.BILINEAR)
    canvas = np.asarray(img).copy()
    cols, rows = _to_pixels(centres.numpy(), span, size)
    yy, xx = np.mgrid[-7:8, -7:8]
    ring = (np.abs(np.hypot(yy, xx) - 6) < 1.0)
    for r, c in zip(rows, cols):
        rr, cc = r + yy[ring], c + xx[ring]
        ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
        canvas[rr[ok], cc[ok]] = (0, 150, 0)
    cols, rows = _to_pixels(snapshot.samples.numpy(), span, size)
    inside = (cols >= 0) & (cols < size - 1) & (rows >= 0) & (rows < size - 1)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        canvas[rows[inside] + dr, cols[inside] + dc] = (20, 20, 20)
    return canvas


class ToyGANReplay:
    """A step slider over the snapshots of one or more toy GAN runs, shown side by side.

    ``runs``: a dict name -> ``recipes.ToyRun`` with the same snapshot steps.
    Each panel shows generated points over the discriminator's decision surface,
    and its title the modes covered at that step. ``replay.show(step_index)``
    moves the slider from code; ``play`` animates it in the browser.
    """

    def __init__(self, runs: dict, size: int = 260):
        import ipywidgets as w

        from aigc_course.models.gan import ring_centres

        if not runs:
            raise ValueError("ToyGANReplay needs at least one run: {'name': train_toy_gan(...)}")
        self.runs, self.size = runs, size
        steps = [tuple(s.step for s in run.snapshots) for run in runs.values()]
        if len(set(steps)) != 1:
            raise ValueError("all runs must have snapshots at the same steps (same steps and snapshot_every)")
        self.steps = steps[0]
        first = next(iter(runs.values()))
        self.centres = ring_centres(first.recipe.modes, first.recipe.radius)
        self.slider = w.IntSlider(description="snapshot", min=0, max=len(self.steps) - 1, value=len(self.steps) - 1,
                                  continuous_update=True, layout=w.Layout(width="420px"))
        self.play = w.Play(min=0, max=len(self.steps) - 1, value=len(self.steps) - 1, interval=150,
                           description="play")  # jslink copies play's value to the slider: start both at the end
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.images = {name: w.Image(format="png", width=size, height=size) for name in runs}
        self.titles = {name: w.HTML() for name in runs}
        self.status = w.HTML()
        self.last_update_ms = 0.0
        self.slider.observe(lambda _: self.update(), names="value")
        panels = [w.VBox([self.titles[n], self.images[n]]) for n in runs]
        legend = ("<span style='color:#7899d8'>&#9632;</span> D says fake &nbsp; "
                  "<span style='color:#ef8c78'>&#9632;</span> D says real &nbsp; "
                  "<span style='color:#009600'>&#9711;</span> true modes &nbsp; &#9679; generated samples")
        self.widget = w.VBox([w.HBox(panels), w.HTML(legend), w.HBox([self.play, self.slider]), self.status])
        self.update()

    def update(self) -> float:
        start = time.perf_counter()
        i = self.slider.value
        for name, run in self.runs.items():
            snap = run.snapshots[i]
            fixed = (0.0, 1.0) if run.recipe.loss != "wgan-gp" else None
            self.images[name].value = png_bytes(toy_frame(snap, self.centres, run.span, self.size, fixed))
            self.titles[name].value = f"<b>{name}</b>: {snap.coverage}"
        self.last_update_ms = (time.perf_counter() - start) * 1000
        self.status.value = f"step {self.steps[i]} &nbsp; draw: {self.last_update_ms:.1f} ms"
        return self.last_update_ms

    def show(self, index: int) -> None:
        self.slider.value = index

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class GANExplorer:
    """Sliders over a few latent directions of a digit GAN, a "new seed" button and (cGAN) a class picker.

    The image is G(z) with z = z_seed + sum_i a_i u_i: ``z_seed`` ~ N(0, I) from
    the seed, u_i fixed random orthonormal directions, a_i the sliders. Every
    change runs the generator once (a few ms on a CPU). ``set(...)`` and
    ``new_seed()`` drive it from code.
    """

    def __init__(self, model, directions: int = 4, span: float = 3.0, seed: int = 0, size: int = 196):
        import ipywidgets as w

        if not hasattr(model, "generate") or not hasattr(model, "latent_dim"):
            raise ValueError("GANExplorer needs a DCGAN (load_pretrained('dcgan') or 'cgan')")
        if not 1 <= directions <= model.latent_dim:
            raise ValueError(f"directions must be in 1..{model.latent_dim}, got {directions}")
        self.model, self.size = model.eval(), size
        basis = torch.linalg.qr(torch.randn(model.latent_dim, directions,
                                            generator=torch.Generator().manual_seed(2024)))[0]
        self.directions = basis.T  # (directions, latent_dim), orthonormal rows
        self.seed = seed
        self.z_seed = self._z_for(seed)
        slider = dict(min=-span, max=span, step=0.1, value=0.0, continuous_update=True, layout=w.Layout(width="320px"))
        self.sliders = [w.FloatSlider(description=f"a{i + 1}", **slider) for i in range(directions)]
        self.button = w.Button(description="new seed", icon="refresh")
        self.label = None
        if getattr(model, "conditional", False):
            self.label = w.ToggleButtons(options=[str(d) for d in range(model.config.num_classes)], value="7",
                                         description="class", style={"button_width": "28px"})
            self.label.observe(lambda _: self.update(), names="value")
        self.image = w.Image(format="png", width=size, height=size)
        self.status = w.HTML()
        self.last_update_ms = 0.0
        for s in self.sliders:
            s.observe(lambda _: self.update(), names="value")
        self.button.on_click(lambda _: self.new_seed())
        controls = [*self.sliders, self.button] + ([self.label] if self.label is not None else [])
        self.widget = w.VBox([w.HBox([w.VBox([w.HTML("<b>generated digit</b> G(z)"), self.image]),
                                      w.VBox(controls)]), self.status])
        self.update()

    def _z_for(self, seed: int) -> torch.Tensor:
        return torch.randn(1, self.model.latent_dim, generator=torch.Generator().manual_seed(seed))

    def z(self, values=None) -> torch.Tensor:
        """The latent (1, latent_dim) for slider ``values`` (default: the sliders' current values)."""
        values = [s.value for s in self.sliders] if values is None else list(values)
        return self.z_seed + torch.tensor([values], dtype=torch.float32) @ self.directions

    def render(self, values=None, label: int | None = None) -> bytes:
        """Generate the digit for slider ``values`` and class ``label`` as PNG bytes, without touching the widgets."""
        if label is None and self.label is not None:
            label = int(self.label.value)
        labels = torch.tensor([label]) if self.label is not None else None
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one 28x28 image is too small to share out; on a busy CPU a 2nd thread only waits
        try:
            image = self.model.generate(self.z(values), labels)[0]
        finally:
            torch.set_num_threads(threads)
        return digit_png(image, self.size)

    def update(self) -> float:
        """Redraw for the current sliders, seed and class; return the time it took in milliseconds."""
        start = time.perf_counter()
        self.image.value = self.render()
        self.last_update_ms = (time.perf_counter() - start) * 1000
        shown = ", ".join(f"{s.value:+.1f}" for s in self.sliders)
        cls = f" &nbsp; class {self.label.value}" if self.label is not None else ""
        self.status.value = f"seed {self.seed} &nbsp; a = ({shown}){cls} &nbsp; generate + draw: {self.last_update_ms:.1f} ms"
        return self.last_update_ms

    def new_seed(self) -> None:
        """Draw a fresh z_seed (seed + 1) and redraw."""
        self.seed += 1
        self.z_seed = self._z_for(self.seed)
        self.update()

    def set(self, *values: float) -> None:
        for s, v in zip(self.sliders, values):
            s.value = v

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

        from aigc_course.data.images import BUILTIN, CONTENT_NAMES, STYLE_NAMES
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
        from aigc_course.data.images import load_image
        from aigc_course.models.style import to_uint8
        from aigc_course.train.stylize import stylize

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


# --- Lesson 04: diffusion explorers ---------------------------------------------------------------

def _grid_png(images: torch.Tensor, nrow: int, scale: int = 3) -> bytes:
    """Images (N, 1, 28, 28) in [0, 1] as one enlarged PNG grid."""
    from aigc_course.views.plots import grid_array

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
