"""Lesson 09's explorer: chat with the tuned assistant and change how it samples its replies."""
from __future__ import annotations

import html

import torch

from aigc_course.core.i18n import tr
from aigc_course.data.assistant import MARKERS, SYSTEM_PROMPTS, format_chat, user_turn
from aigc_course.models.assistant import complete
from aigc_course.views.widgets.base import Explorer

EXAMPLE_MESSAGES = ("What is 23 plus 45?", "小明有31个苹果，又买了12个。他现在有几个苹果？",
                    'What is the Chinese for "diffusion model"?', "“扩散模型”的英文是什么？")


def chat_prompt(message: str, system: str | None = None, context: str = "") -> str:
    """The text the model continues for one user ``message``: system turn, user turn, assistant marker.
    The system prompt defaults to the one the model was tuned with, in the message's language; a retrieved
    ``context`` line goes before the message, as in tuning (``Context: ...``)."""
    if not message.strip():
        raise ValueError(tr("type a message first"))
    if system is None:
        system = SYSTEM_PROMPTS[any("\u4e00" <= ch <= "\u9fff" for ch in message)]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user_turn(message.strip(), context)}]
    return format_chat(messages, add_generation_prompt=True)


def chat_reply(model, tokenizer, message: str, temperature: float = 0.0, top_k: int | None = None,
               top_p: float | None = None, seed: int = 0, max_new_tokens: int = 30, context: str = "") -> str:
    """The model's reply to ``message`` (greedy at temperature 0), cut at the end-of-turn marker.

    Each message is answered on its own (the small models here were tuned on
    one-turn conversations). Characters the model's alphabet lacks are read as "unknown".
    """
    ids = tokenizer.encode(chat_prompt(message, context=context))
    end = tokenizer.encode(MARKERS["end"])[0]
    generator = torch.Generator().manual_seed(seed)
    out = complete(model, ids, end, max_new_tokens, temperature=temperature, top_k=top_k or None,
                   top_p=top_p if top_p and top_p < 1 else None, generator=generator)
    return tokenizer.decode(out)


def look_up(message: str) -> str:
    """The lesson passage retrieval puts before ``message`` (:func:`aigc_course.models.assistant.retrieve`)."""
    from aigc_course.models.assistant import lesson_index, retrieve

    return retrieve(lesson_index(), message)


class ChatExplorer(Explorer):
    """A chat box: type a message (or pick an example), press Send, read the reply under the current
    temperature / top-k / top-p; the seed makes a sampled reply reproducible. The transcript keeps every
    exchange with the settings it was made with. With "look it up" on, each message first retrieves a line of
    the lessons (BM25, :func:`look_up`), shown above the reply and put before the message as its context."""

    timing_label = "reply"

    def __init__(self, model, tokenizer, seed: int = 0):
        import ipywidgets as w

        super().__init__()
        self.model, self.tokenizer = model.eval(), tokenizer
        self.history: list[tuple[str, str, str, str]] = []   # (message, reply, settings, retrieved)
        self.message = w.Text(value=EXAMPLE_MESSAGES[0], description=tr("message"), layout=w.Layout(width="520px"))
        self.examples = w.Dropdown(options=EXAMPLE_MESSAGES, value=EXAMPLE_MESSAGES[0], description=tr("examples"),
                                   layout=w.Layout(width="520px"))
        self.temperature = w.FloatSlider(description=tr("temperature"), min=0.0, max=2.0, step=0.1, value=0.0,
                                         layout=w.Layout(width="420px"))
        self.top_k = w.IntSlider(description="top-k", min=0, max=50, value=0, layout=w.Layout(width="420px"))
        self.top_p = w.FloatSlider(description="top-p", min=0.05, max=1.0, step=0.05, value=1.0,
                                   layout=w.Layout(width="420px"))
        self.seed = w.IntText(value=seed, description=tr("seed"), layout=w.Layout(width="200px"))
        self.retrieval = w.Checkbox(value=False, description=tr("look it up in the lessons (retrieval)"),
                                    indent=False, layout=w.Layout(width="420px"))
        for s in (self.temperature, self.top_k, self.top_p, self.message, self.examples, self.seed):
            s.style.description_width = "90px"
        self.send_button = w.Button(description=tr("Send"), button_style="primary")
        self.clear_button = w.Button(description=tr("Clear"))
        self.transcript = w.HTML()
        self.examples.observe(lambda change: setattr(self.message, "value", change["new"]), names="value")
        self.send_button.on_click(lambda _: self.send())
        self.clear_button.on_click(lambda _: self.clear())
        self._show(self.examples, self.message, self.retrieval, self.temperature, self.top_k, self.top_p,
                   w.HBox([self.seed, self.send_button, self.clear_button]), self.transcript, first=self._intro)

    def _intro(self) -> None:
        self.transcript.value = '<div class="chat-transcript"></div>'
        self.status.value = tr("greedy at temperature 0; press Send")

    def settings(self) -> str:
        if self.temperature.value == 0:
            return tr("greedy")
        return (f"T = {self.temperature.value:.1f}, top-k = {self.top_k.value or tr('off')}, "
                f"top-p = {self.top_p.value:.2f}, {tr('seed')} {self.seed.value}")

    def draw(self) -> str:
        """Answer the current message and add the exchange to the transcript."""
        context = look_up(self.message.value) if self.retrieval.value and self.message.value.strip() else ""
        text = chat_reply(self.model, self.tokenizer, self.message.value, self.temperature.value, self.top_k.value,
                          self.top_p.value, self.seed.value, context=context)
        self.history.append((self.message.value, text, self.settings(), context))
        rows = "".join(
            f'<div class="chat-user" style="margin:4px 0"><b>{tr("you")}:</b> {html.escape(m)}</div>'
            + (f'<div class="chat-context" style="margin:0 0 2px 24px;color:#666;font-family:monospace">'
               f'{tr("retrieved")}: {html.escape(c)}</div>' if c else "")
            + f'<div class="chat-reply" style="margin:0 0 8px 24px;color:#1f4e79"><b>{tr("assistant")}:</b> '
            f'<span class="chat-text">{html.escape(r) or "&nbsp;"}</span> <small style="color:#888">({s})</small></div>'
            for m, r, s, c in self.history)
        self.transcript.value = f'<div class="chat-transcript" style="width:640px">{rows}</div>'
        return tr("{n} exchange(s); last: {settings}", n=len(self.history), settings=self.settings())

    def send(self) -> float:
        """Reply to the message in the box; return the milliseconds it took."""
        return self.update()

    def clear(self) -> None:
        self.history = []
        self._intro()
