"""Lesson 05's explorer: the next-token distribution under temperature, top-k and top-p, one step at a time."""
from __future__ import annotations

import html

import torch

from aigc_course.core.i18n import tr
from aigc_course.views.widgets.base import Explorer

#: Example prompts for the Tang-poem model ``poem_char``: a blank line (where every poem of its training text
#: begins), then the first characters of a poem (春 spring, 月 moon, ...).
POEM_PROMPTS = tuple("\n\n" + start for start in ("春", "月", "山", "江", "秋风", "白日"))


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
    rows = "".join(
        f'<tr><td style="font-family:monospace;text-align:right;padding-right:6px">{html.escape(label)}</td>'
        f'<td style="width:260px"><div style="background:#4c72b0;height:14px;width:{max(p, 0.0) * 100:.1f}%">'
        f'</div></td><td style="font-family:monospace;padding-left:6px">{p:.3f}</td></tr>'
        for label, p in zip(labels, probs))
    return (f'<div class="next-token-chart"><b>{html.escape(title)}</b>'
            f'<table style="border-collapse:collapse">{rows}</table></div>')


class SamplingExplorer(Explorer):
    """Type a prompt, move temperature / top-k / top-p, see the next-token distribution, and step.

    Every change recomputes the model's next-token logits for the current text
    (one forward pass) and redraws the bar chart of the ``n_bars`` most likely
    tokens *after* temperature, top-k and top-p: tokens the filters remove drop
    to probability 0, the rest are renormalised. "Step" samples one token from
    that distribution and appends it; "Generate 20" does it twenty times.
    Works with any :class:`~aigc_course.models.gpt.GPT` and a tokenizer with
    ``encode``/``decode`` (:class:`ByteTokenizer`, :class:`CharTokenizer` or
    :class:`GPT2Tokenizer`). ``examples`` (e.g. :data:`POEM_PROMPTS` for the poem
    model) adds a menu of prompts to start from.
    """

    timing_label = "forward + draw"

    def __init__(self, model, tokenizer, prompt: str = "ROMEO:\n", n_bars: int = 12, seed: int = 0,
                 examples: tuple[str, ...] = ()):
        import ipywidgets as w

        super().__init__()
        self.model, self.tokenizer, self.n_bars = model.eval(), tokenizer, n_bars
        self.generator = torch.Generator().manual_seed(seed)
        self._gen_ids: list[int] = []
        self.prompt = w.Textarea(value=prompt, description=tr("prompt"), layout=w.Layout(width="520px", height="70px"))
        self.temperature = w.FloatSlider(description=tr("temperature"), min=0.1, max=2.0, step=0.05, value=1.0,
                                         continuous_update=True, layout=w.Layout(width="420px"))
        self.top_k = w.IntSlider(description="top-k", min=0, max=100, value=0, continuous_update=True,
                                 layout=w.Layout(width="420px"))
        self.top_p = w.FloatSlider(description="top-p", min=0.05, max=1.0, step=0.05, value=1.0,
                                   continuous_update=True, layout=w.Layout(width="420px"))
        for s in (self.temperature, self.top_k, self.top_p):
            s.style.description_width = "90px"
        self.step_button = w.Button(description=tr("Step"), tooltip=tr("sample one token and append it"))
        self.run_button = w.Button(description=tr("Generate {n}", n=20))
        self.reset_button = w.Button(description=tr("Reset"))
        self.text = w.HTML()
        self.chart = w.HTML()
        self.prompt.observe(lambda _: self.reset(), names="value")  # a new prompt starts over
        self._redraw_on(self.temperature, self.top_k, self.top_p)
        self.step_button.on_click(lambda _: self.step())
        self.run_button.on_click(lambda _: self.step(20))
        self.reset_button.on_click(lambda _: self.reset())
        rows = [self.prompt]
        if examples:
            labels = [(example.strip() or repr(example), example) for example in examples]  # buttons show no newlines
            self.examples = w.ToggleButtons(options=labels, value=None, description=tr("examples"))
            self.examples.observe(lambda change: change["new"] and setattr(self.prompt, "value", change["new"]),
                                  names="value")
            rows.insert(0, self.examples)
        self._show(*rows, self.temperature, self.top_k, self.top_p,
                   w.HBox([self.step_button, self.run_button, self.reset_button]),
                   w.HBox([self.chart, self.text]))

    def context_ids(self) -> list[int]:
        """The token ids the model sees: the prompt's, then the ones sampled so far."""
        return self.tokenizer.encode(self.prompt.value) + self._gen_ids

    @torch.no_grad()
    def distribution(self) -> torch.Tensor:
        """Next-token probabilities (vocab,) under the current temperature / top-k / top-p."""
        from aigc_course.models.gpt import next_token_distribution

        ids = self.context_ids() or [0]
        device = next(self.model.parameters()).device
        logits = self.model.next_token_logits(torch.tensor([ids], device=device))
        return next_token_distribution(logits, self.temperature.value, self.top_k.value or None,
                                       self.top_p.value)[0].cpu()

    def draw(self) -> str:
        """Recompute and redraw the bar chart and the text."""
        probs = self.distribution()
        kept = int((probs > 0).sum())
        top = torch.topk(probs, min(self.n_bars, kept))
        labels = [token_label(self.tokenizer, int(i)) for i in top.indices]
        self.chart.value = probability_bars_html(labels, top.values.tolist(),
                                                 tr("next token: {kept} candidate(s) left after the filters",
                                                    kept=kept))
        prompt, gen = html.escape(self.prompt.value), html.escape(self.tokenizer.decode(self._gen_ids))
        self.text.value = (f'<pre style="white-space:pre-wrap;width:360px;margin-left:16px">{prompt}'
                           f'<b style="color:#c44e52">{gen}</b></pre>')
        return (f"T = {self.temperature.value:.2f}, top-k = {self.top_k.value or tr('off')}, "
                f"top-p = {self.top_p.value:.2f}")

    def step(self, n: int = 1) -> None:
        """Sample ``n`` tokens one at a time from the current distribution and append them."""
        def append():
            for _ in range(n):
                self._gen_ids = self._gen_ids + [int(torch.multinomial(self.distribution(), 1,
                                                                       generator=self.generator))]
        self._then_update(append)

    def reset(self) -> None:
        """Forget the sampled tokens and redraw for the prompt alone."""
        self._gen_ids = []
        self.update()
