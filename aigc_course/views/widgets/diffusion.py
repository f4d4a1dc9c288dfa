"""Lesson 04's explorers: scrub along one sampling trajectory, and classifier-free guidance live."""
from __future__ import annotations

import torch

from aigc_course.core.i18n import tr
from aigc_course.models.diffusion import sample, sample_trajectory
from aigc_course.views.widgets.base import Explorer, digit_png, grid_png


class TimestepScrubber(Explorer):
    """Scrub along one sampling trajectory: x_t and the model's prediction of x_0 at every step.

    Picking a digit or a seed runs the sampler once (DDIM, ``steps`` network calls,
    recording every step with ``sample_trajectory``); moving the step slider
    then only redraws. Early in the trajectory x_t is nearly pure noise while the
    predicted x_0 is already a blurry average digit; it sharpens as t falls.
    """

    timing_label = "redraw"

    def __init__(self, model, label: int = 7, steps: int = 50, seed: int = 0):
        import ipywidgets as w

        super().__init__()
        self.model, self.steps = model.eval(), steps
        self.last_sample_ms = 0.0
        self.label = w.Dropdown(options=list(range(10)), value=label, description=tr("digit"),
                                layout=w.Layout(width="160px"))
        self.seed = w.BoundedIntText(value=seed, min=0, max=10_000, description=tr("seed"),
                                     layout=w.Layout(width="160px"))
        self.step = w.IntSlider(value=0, min=0, max=steps, description=tr("step"), continuous_update=True,
                                layout=w.Layout(width="420px"))
        self.x_image, self.x0_image = w.Image(format="png"), w.Image(format="png")
        for control in (self.label, self.seed):
            control.observe(lambda _: self.resample(), names="value")
        self._redraw_on(self.step)
        self._show(w.HBox([self.label, self.seed]),
                   w.HBox([w.VBox([w.HTML(tr("<b>x<sub>t</sub></b> (what the sampler holds)")), self.x_image]),
                           w.VBox([w.HTML(tr("<b>predicted x<sub>0</sub></b> (the model's guess)")), self.x0_image])]),
                   self.step, first=self.resample)

    def _record(self) -> None:
        self.trajectory = sample_trajectory(self.model, 1, self.label.value, steps=self.steps,
                                            generator=torch.Generator().manual_seed(self.seed.value))
        self.timesteps = self.trajectory.timesteps

    def resample(self) -> float:
        """Run the sampler for the current digit and seed, keep every x_t and x0_hat, redraw; return milliseconds."""
        self.last_sample_ms = self._timed(self._record)
        if self.last_error is None:
            self.update()
        return self.last_sample_ms

    def draw(self) -> str:
        """Redraw the two images for the slider's step."""
        i = self.step.value
        self.x_image.value = digit_png(self.trajectory.xs[i][0], 168)
        self.x0_image.value = digit_png(self.trajectory.x0s[i][0], 168)
        t = self.timesteps[i]
        where = tr("final sample x<sub>0</sub>") if t < 0 else tr("t = {t} of {T}", t=t, T=1000)
        return tr("step {i} of {steps} ({where}) &nbsp; DDIM-{steps} trajectory sampled in {ms:.0f} ms",
                  i=i, steps=self.steps, where=where, ms=self.last_sample_ms)


class GuidanceExplorer(Explorer):
    """Classifier-free guidance live: pick a digit and a guidance scale w, see n samples drawn on the fly.

    The same seed (the same starting noise) is used for every w, so what changes
    between two settings is the guidance alone. Under the grid: how many samples
    the digit classifier reads as the requested digit (fidelity) and the mean
    pixel distance between samples (diversity).
    """

    def __init__(self, model, classifier, label: int = 7, guidance: float = 0.0, n: int = 12, steps: int = 20,
                 seed: int = 0):
        import ipywidgets as w

        super().__init__()
        self.model, self.classifier, self.n, self.steps, self.seed = model.eval(), classifier.eval(), n, steps, seed
        self.timing_label = f"DDIM-{steps} + draw"  # in English; timing_text() gives the current language
        self.label = w.ToggleButtons(options=list(range(10)), value=label, description=tr("digit"),
                                     style={"button_width": "32px"})
        self.guidance = w.FloatSlider(value=guidance, min=0.0, max=8.0, step=0.5, description=tr("guidance w"),
                                      continuous_update=False, layout=w.Layout(width="420px"))
        self.image = w.Image(format="png")
        self._redraw_on(self.label, self.guidance)
        self._show(self.label, self.guidance, self.image)

    def timing_text(self) -> str:
        return tr("DDIM-{steps} + draw", steps=self.steps)

    @torch.no_grad()
    def render(self, label: int, guidance: float) -> tuple[torch.Tensor, float, float]:
        """(samples in [0, 1], fraction classified as ``label``, RMS pixel distance between samples) for one setting."""
        images = sample(self.model, self.n, label, steps=self.steps, guidance=guidance,
                        generator=torch.Generator().manual_seed(self.seed))
        device = next(self.classifier.parameters()).device
        hits = (self.classifier(images.to(device)).argmax(1).cpu() == label).float().mean().item()
        flat = images.flatten(1)
        diversity = torch.pdist(flat).mean().item() / flat.shape[1] ** 0.5
        return images, hits, diversity

    def draw(self) -> str:
        images, hits, diversity = self.render(self.label.value, self.guidance.value)
        self.image.value = grid_png(images, nrow=min(self.n, 6))
        return tr("w = {w:.1f}: {hits} of {n} read as a {digit} by the digit classifier; diversity "
                  "(RMS pixel distance between samples) {diversity:.3f}", w=self.guidance.value,
                  hits=round(hits * self.n), n=self.n, digit=self.label.value, diversity=diversity)
