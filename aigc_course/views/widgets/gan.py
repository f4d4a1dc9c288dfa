"""Lesson 02's explorers: a replay of toy GAN training, and sliders over a digit GAN's latent space."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from aigc_course.core.i18n import tr
from aigc_course.views.widgets.base import Explorer, digit_png, png_bytes, to_pixels


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
    cols, rows = to_pixels(centres.numpy(), span, size)
    yy, xx = np.mgrid[-7:8, -7:8]
    ring = (np.abs(np.hypot(yy, xx) - 6) < 1.0)
    for r, c in zip(rows, cols):
        rr, cc = r + yy[ring], c + xx[ring]
        ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
        canvas[rr[ok], cc[ok]] = (0, 150, 0)
    cols, rows = to_pixels(snapshot.samples.numpy(), span, size)
    inside = (cols >= 0) & (cols < size - 1) & (rows >= 0) & (rows < size - 1)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        canvas[rows[inside] + dr, cols[inside] + dc] = (20, 20, 20)
    return canvas


def coverage_text(coverage) -> str:
    """A ``ModeCoverage`` as the replay's panel title reads it, in the current language."""
    return tr("{covered}/{modes} modes covered, {quality:.0%} high-quality samples", covered=coverage.covered,
              modes=len(coverage.counts), quality=coverage.high_quality)


class ToyGANReplay(Explorer):
    """A step slider over the snapshots of one or more toy GAN runs, shown side by side.

    ``runs``: a dict name -> ``recipes.gan.ToyRun`` with the same snapshot steps.
    Each panel shows generated points over the discriminator's decision surface,
    and its title the modes covered at that step. ``replay.show(step_index)``
    moves the slider from code; ``play`` animates it in the browser.
    """

    def __init__(self, runs: dict, size: int = 260):
        import ipywidgets as w

        from aigc_course.models.gan import ring_centres

        if not runs:
            raise ValueError("ToyGANReplay needs at least one run: {'name': train_toy_gan(...)}")
        steps = [tuple(s.step for s in run.snapshots) for run in runs.values()]
        if len(set(steps)) != 1:
            raise ValueError("all runs must have snapshots at the same steps (same steps and snapshot_every)")
        super().__init__()
        self.runs, self.size, self.steps = runs, size, steps[0]
        first = next(iter(runs.values()))
        self.centres = ring_centres(first.recipe.modes, first.recipe.radius)
        last = len(self.steps) - 1
        self.slider = w.IntSlider(description=tr("snapshot"), min=0, max=last, value=last,
                                  continuous_update=True, layout=w.Layout(width="420px"))
        self.play = w.Play(min=0, max=last, value=last, interval=150,
                           description=tr("play"))  # jslink copies play's value to the slider: start both at the end
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.images = {name: w.Image(format="png", width=size, height=size) for name in runs}
        self.titles = {name: w.HTML() for name in runs}
        self._redraw_on(self.slider)
        legend = (f"<span style='color:#7899d8'>&#9632;</span> {tr('D says fake')} &nbsp; "
                  f"<span style='color:#ef8c78'>&#9632;</span> {tr('D says real')} &nbsp; "
                  f"<span style='color:#009600'>&#9711;</span> {tr('true modes')} &nbsp; &#9679; "
                  f"{tr('generated samples')}")
        self._show(w.HBox([w.VBox([self.titles[n], self.images[n]]) for n in runs]), w.HTML(legend),
                   w.HBox([self.play, self.slider]))

    def draw(self) -> str:
        i = self.slider.value
        for name, run in self.runs.items():
            snap = run.snapshots[i]
            fixed = (0.0, 1.0) if run.recipe.loss != "wgan-gp" else None  # D's probability; a critic's score is free
            self.images[name].value = png_bytes(toy_frame(snap, self.centres, run.span, self.size, fixed))
            self.titles[name].value = f"<b>{name}</b>: {coverage_text(snap.coverage)}"
        return tr("step {step}", step=self.steps[i])

    def show(self, index: int) -> None:
        self.slider.value = index


class GANExplorer(Explorer):
    """Sliders over a few latent directions of a digit GAN, a "new seed" button and (cGAN) a class picker.

    The image is G(z) with z = z_seed + sum_i a_i u_i: ``z_seed`` ~ N(0, I) from
    the seed, u_i fixed random orthonormal directions, a_i the sliders. Every
    change runs the generator once (a few ms on a CPU). ``set(...)`` and
    ``new_seed()`` drive it from code.
    """

    timing_label = "generate + draw"

    def __init__(self, model, directions: int = 4, span: float = 3.0, seed: int = 0, size: int = 196):
        import ipywidgets as w

        if not hasattr(model, "generate") or not hasattr(model, "latent_dim"):
            raise ValueError("GANExplorer needs a DCGAN (load_pretrained('dcgan') or 'cgan')")
        if not 1 <= directions <= model.latent_dim:
            raise ValueError(f"directions must be in 1..{model.latent_dim}, got {directions}")
        super().__init__()
        self.model, self.size = model.eval(), size
        basis = torch.linalg.qr(torch.randn(model.latent_dim, directions,
                                            generator=torch.Generator().manual_seed(2024)))[0]
        self.directions = basis.T  # (directions, latent_dim), orthonormal rows
        self.seed = seed
        self.z_seed = self._z_for(seed)
        slider = dict(min=-span, max=span, step=0.1, value=0.0, continuous_update=True, layout=w.Layout(width="320px"))
        self.sliders = [w.FloatSlider(description=f"a{i + 1}", **slider) for i in range(directions)]
        self.button = w.Button(description=tr("new seed"), icon="refresh")
        self.label = None
        if getattr(model, "conditional", False):
            self.label = w.ToggleButtons(options=[str(d) for d in range(model.config.num_classes)], value="7",
                                         description=tr("class"), style={"button_width": "28px"})
            self._redraw_on(self.label)
        self.image = w.Image(format="png", width=size, height=size)
        self._redraw_on(*self.sliders)
        self.button.on_click(lambda _: self.new_seed())
        controls = [*self.sliders, self.button] + ([self.label] if self.label is not None else [])
        self._show(w.HBox([w.VBox([w.HTML(tr("<b>generated digit</b> G(z)")), self.image]), w.VBox(controls)]))

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

    def draw(self) -> str:
        self.image.value = self.render()
        shown = ", ".join(f"{s.value:+.1f}" for s in self.sliders)
        cls = " &nbsp; " + tr("class {digit}", digit=self.label.value) if self.label is not None else ""
        return tr("seed {seed}", seed=self.seed) + f" &nbsp; a = ({shown}){cls}"

    def new_seed(self) -> None:
        """Draw a fresh z_seed (seed + 1) and redraw."""
        self.seed += 1
        self.z_seed = self._z_for(self.seed)
        self.update()

    def set(self, *values: float) -> None:
        for s, v in zip(self.sliders, values):
            s.value = v
