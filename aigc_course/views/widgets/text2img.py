"""Lesson 08's explorer: type a prompt (English or Chinese), set guidance and seed, see 8 digits drawn live."""
from __future__ import annotations

import html

import torch

from aigc_course.core.i18n import tr
from aigc_course.data.attributes import ATTRIBUTES, LEVELS, attributes_of
from aigc_course.data.captions import requested
from aigc_course.views.widgets.base import Explorer, grid_png


def _names() -> dict[str, str]:
    """Attribute and level names as the status line shows them, in the current language."""
    return {"digit": tr("digit"), "thickness": tr("thickness"), "slant": tr("slant"), "size": tr("size"),
            "thin": tr("thin"), "regular": tr("regular"), "bold": tr("bold"), "left": tr("leaning left"),
            "upright": tr("upright"), "right": tr("leaning right"), "small": tr("small"), "medium": tr("medium"),
            "large": tr("large")}


class PromptExplorer(Explorer):
    """A prompt box, a negative-prompt box, a guidance slider and a seed: every change draws ``n`` new digits.

    Under the grid: what the prompt asks for (read back from its words) and how many of the
    digits show it, measured like the lesson measures its training digits (the class by the
    digit classifier; thickness, slant and size by ``aigc_course.data.attributes``). A prompt
    the tokenizer cannot read shows its message in the status line instead of a traceback.
    """

    def __init__(self, pipe, classifier, prompt: str = "a thin 7 leaning right", guidance: float = 3.0,
                 n: int = 8, steps: int = 20, seed: int = 0):
        import ipywidgets as w

        super().__init__()
        self.pipe, self.classifier, self.n, self.steps = pipe, classifier.eval(), n, steps
        self.timing_label = f"DDIM-{steps} + draw"
        self.prompt = w.Text(value=prompt, description=tr("prompt"), continuous_update=False,
                             layout=w.Layout(width="420px"))
        self.negative = w.Text(value="", description=tr("negative"), continuous_update=False,
                               placeholder=tr("(empty: the unconditional model)"), layout=w.Layout(width="420px"))
        self.guidance = w.FloatSlider(value=guidance, min=0.0, max=8.0, step=0.5, description=tr("guidance w"),
                                      continuous_update=False, layout=w.Layout(width="420px"))
        self.seed = w.BoundedIntText(value=seed, min=0, max=10_000, description=tr("seed"),
                                     layout=w.Layout(width="160px"))
        self.image = w.Image(format="png")
        self.images: torch.Tensor | None = None
        self._redraw_on(self.prompt, self.negative, self.guidance, self.seed)
        self._show(self.prompt, self.negative, w.HBox([self.guidance, self.seed]), self.image)

    def timing_text(self) -> str:
        return tr("DDIM-{steps} + draw", steps=self.steps)

    @torch.no_grad()
    def matches(self, images: torch.Tensor, prompt: str) -> dict[str, tuple[int, int]]:
        """{attribute: (asked level, how many images show it)} for every attribute the prompt names."""
        asked = requested(self.pipe.tokenizer.split(prompt))
        device = next(self.classifier.parameters()).device
        labels = self.classifier(images.to(device)).argmax(1).cpu()
        measured = attributes_of(images, labels)
        return {a: (level, sum(measured.row(i)[a] == level for i in range(len(images)))) for a, level in asked.items()}

    def describe(self, found: dict[str, tuple[int, int]]) -> str:
        parts, names = [], _names()
        for attribute in ("digit", *ATTRIBUTES):
            if attribute in found:
                level, hits = found[attribute]
                name = str(level) if attribute == "digit" else names[LEVELS[attribute][level]]
                parts.append(tr("{attribute} {value}: {hits} of {n}", attribute=names[attribute], value=name,
                                hits=hits, n=self.n))
        return "; ".join(parts) if parts else tr("the prompt names no digit or attribute")

    def draw(self) -> str:
        prompt = self.prompt.value
        self.images = self.pipe.generate(prompt, n=self.n, guidance=self.guidance.value, negative=self.negative.value,
                                         steps=self.steps, seed=self.seed.value)
        self.image.value = grid_png(self.images, nrow=self.n, scale=3)
        return tr("\"{prompt}\", w = {w:.1f}: {matches}", prompt=html.escape(prompt), w=self.guidance.value,
                  matches=self.describe(self.matches(self.images, prompt)))
