"""Lesson 03's explorer: neural style transfer with live controls (a fast preview on every change)."""
from __future__ import annotations

from dataclasses import replace

from aigc_course.core.i18n import tr
from aigc_course.data.images import BUILTIN, CONTENT_NAMES, STYLE_NAMES, load_image
from aigc_course.models.style import StyleConfig, to_uint8
from aigc_course.train.stylize import stylize
from aigc_course.views.widgets.base import Explorer, png_bytes


class StyleExplorer(Explorer):
    """Live neural style transfer: pick content, style, the style/content ratio and the style layers.

    Every change re-runs a fast preview (``preview_size`` px, ``preview_steps`` L-BFGS evaluations,
    started from the content image); "render full size" runs the same settings at the size slider's
    value with ``full_steps`` evaluations. A progress bar follows the optimisation. The VGG19
    weights are read once; targets are recomputed for each run (they depend on the images).
    ``explorer.last_update_ms`` is the latest preview's wall time.
    """

    LAYER_CHOICES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    timing_label = "optimise + draw"
    in_seconds = True

    def __init__(self, content: str = "chelsea", style: str = "flower", config=None, preview_size: int = 128,
                 preview_steps: int = 30, full_steps: int = 60, device=None):
        import ipywidgets as w

        super().__init__()
        self.config = config or StyleConfig()
        self.preview_size, self.preview_steps, self.full_steps = preview_size, preview_steps, full_steps
        self.device = device
        names = list(BUILTIN)
        self.content = w.Dropdown(options=[*CONTENT_NAMES, *[n for n in names if n not in CONTENT_NAMES]],
                                  value=content, description=tr("content"))
        self.style = w.Dropdown(options=[*STYLE_NAMES, *[n for n in names if n not in STYLE_NAMES]],
                                value=style, description=tr("style"))
        ratio = self.config.style_weight / self.config.content_weight
        self.ratio = w.FloatLogSlider(value=ratio, base=10, min=-2, max=4, step=0.25, description=tr("style/content"),
                                      continuous_update=False, readout_format=".3g",
                                      style={"description_width": "90px"}, layout=w.Layout(width="420px"))
        self.layers = [w.Checkbox(value=n in self.config.style_layers, description=n, indent=False,
                                  layout=w.Layout(width="80px")) for n in self.LAYER_CHOICES]
        self.preserve = w.Checkbox(value=self.config.preserve_color, description=tr("preserve colour"),
                                    indent=False)
        self.size = w.IntSlider(value=256, min=128, max=512, step=64, description=tr("full size"),
                                continuous_update=False, style={"description_width": "90px"})
        self.button = w.Button(description=tr("render full size"), icon="paint-brush")
        self.progress = w.IntProgress(value=0, min=0, max=preview_steps, description=tr("optimising"),
                                      layout=w.Layout(width="420px"))
        self.inputs = [w.Image(format="png", width=160) for _ in range(2)]
        self.result = w.Image(format="png", width=256)
        self._redraw_on(self.content, self.style, self.ratio, self.preserve, *self.layers)
        self.button.on_click(lambda _: self.render_full())
        self._show(w.HBox([self.content, self.style]),
                   w.HBox([self.ratio, self.preserve]),
                   w.HBox([w.HTML(tr("style layers:") + "&nbsp;"), *self.layers]),
                   w.HBox([self.size, self.button]),
                   self.progress,
                   w.HBox([w.VBox([w.HTML(f"<b>{tr('content')}</b>"), self.inputs[0],
                                   w.HTML(f"<b>{tr('style')}</b>"), self.inputs[1]]),
                           w.VBox([w.HTML(f"<b>{tr('result')}</b>"), self.result])]))

    def current_config(self, size: int, steps: int) -> StyleConfig:
        """The StyleConfig the controls describe, at ``size`` px with ``steps`` evaluations."""
        layers = tuple(c.description for c in self.layers if c.value)
        return replace(self.config, style_layers=layers, content_weight=1.0, style_weight=float(self.ratio.value),
                       preserve_color=bool(self.preserve.value), size=size, steps=steps)

    def _run(self, what: str, size: int, steps: int) -> str:
        """Optimise an image for the current controls, show it, and return the status text (``what``: its
        first word, already in the current language)."""
        config = self.current_config(size, steps)
        if not config.style_layers:
            raise ValueError(tr("choose at least one style layer"))
        self.progress.max, self.progress.value = steps, 0
        self.progress.bar_style = "info"

        def tick(step, _losses):
            self.progress.value = min(step, steps)

        result = stylize(self.content.value, self.style.value, config, progress=False, callback=tick,
                         device=self.device)
        self.progress.bar_style = "success"
        self.inputs[0].value = png_bytes(to_uint8(load_image(self.content.value, 160)))
        self.inputs[1].value = png_bytes(to_uint8(load_image(self.style.value, 160)))
        self.result.value = png_bytes(to_uint8(result.image))
        h, w = result.image.shape[-2:]
        return tr("{what} {w}x{h}, {n} L-BFGS evaluations, loss {loss:.4g}", what=what, w=w, h=h,
                  n=len(result.history), loss=result.final_loss)

    def draw(self) -> str:
        """Run the fast preview for the current controls."""
        return self._run(tr("preview"), self.preview_size, self.preview_steps)

    def render_full(self) -> float:
        """Render the current settings at the size slider's value; return seconds (0 if it failed)."""
        self.button.disabled = True
        try:
            ms = self._timed(lambda: self._run(tr("full size"), int(self.size.value), self.full_steps),
                             tr("render"))
        finally:
            self.button.disabled = False
        return 0.0 if self.last_error is not None else ms / 1000
