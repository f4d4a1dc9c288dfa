"""A tokenizer for prompts in English and Chinese, with the grammar's words as its vocabulary.

English is split at spaces and commas into words; a two-word phrase the
grammar uses as one idea ("leaning right") becomes one token. Chinese has no
spaces, so it is cut by *greedy longest match* against the Chinese words of the
grammar: "一个细长向右倾斜的7" -> 一个 | 细长 | 向右倾斜 | 的 | 7 (the way
dictionary-based Chinese word segmenters such as jieba start). Ids are wrapped
in ``<start> ... <end>`` and padded with ``<pad>`` to a fixed length, as CLIP's
tokenizer does (77 tokens there, :data:`MAX_TOKENS` here).

Anything outside the vocabulary, an empty prompt or one that is too long raises
one ``ValueError`` whose message (in the learner's language) says what to change.
"""
from __future__ import annotations

import re

import torch

from aigc_course.core.i18n import tr
from aigc_course.data.captions import FILLERS_EN, FILLERS_ZH, WORDS

SPECIALS = ("<pad>", "<start>", "<end>")
PAD, START, END = 0, 1, 2
MAX_TOKENS = 16                      # <start> + at most 14 words + <end>
_CJK = re.compile(r"[\u4e00-\u9fff]")


def vocabulary() -> list[str]:
    """The tokens, in id order: the three specials, then every word of the grammar (English, then Chinese)."""
    words = set(WORDS) | set(FILLERS_EN) | set(FILLERS_ZH)
    latin = sorted(w for w in words if not _CJK.search(w))
    chinese = sorted(w for w in words if _CJK.search(w))
    return [*SPECIALS, *latin, *chinese]


class PromptTokenizer:
    """Text <-> ids for lesson 08's prompts. ``encode`` returns a (MAX_TOKENS,) long tensor."""

    def __init__(self, max_tokens: int = MAX_TOKENS):
        self.tokens = vocabulary()
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.max_tokens = max_tokens
        self._phrases = sorted((p for p in self.ids if " " in p), key=len, reverse=True)
        self._chinese = sorted((w for w in self.ids if _CJK.search(w)), key=len, reverse=True)

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        """The prompt's words: lower-case English words and phrases, Chinese words by longest match."""
        text = text.lower().strip()
        for phrase in self._phrases:                            # "leaning right" -> "leaning_right" for now
            text = text.replace(phrase, phrase.replace(" ", "\x00"))
        words = []
        for chunk in re.split(r"[\s,，、。.!?;；:：]+", text):
            if chunk:
                words.extend(self._segment(chunk))
        return [w.replace("\x00", " ") for w in words]

    def _segment(self, chunk: str) -> list[str]:
        """Cut a chunk without spaces: Chinese by greedy longest match; runs of Latin letters/digits as words."""
        out, i = [], 0
        while i < len(chunk):
            if _CJK.match(chunk[i]):
                word = next((w for w in self._chinese if chunk.startswith(w, i)), chunk[i])
            elif chunk[i].isdigit():
                word = chunk[i]                                  # "7" stays one token even in "的7"
            else:
                word = re.match(r"[^\u4e00-\u9fff0-9]+", chunk[i:]).group(0)
            out.append(word)
            i += len(word)
        return out

    def encode(self, text: str, allow_empty: bool = False) -> torch.Tensor:
        """``<start> words <end> <pad>...`` as ids (MAX_TOKENS,). ``allow_empty``: "" is the null prompt."""
        if not isinstance(text, str):
            raise ValueError(tr("a prompt is text, got {type}", type=type(text).__name__))
        words = self.split(text)
        if not words and not allow_empty:
            raise ValueError(tr("the prompt is empty: describe a digit, e.g. \"a thin 7 leaning right\" "
                                "or \"一个粗体的 7\""))
        unknown = [w for w in words if w not in self.ids]
        if unknown:
            raise ValueError(tr("unknown word(s) {words} in the prompt: use the words of the lesson's captions, "
                                "e.g. {examples}", words=", ".join(f"\"{w}\"" for w in unknown),
                                examples="thin, bold, small, large, leaning left/right, upright, 0-9 / "
                                         "seven; 细, 粗体, 小, 大, 向右倾斜, 端正"))
        if len(words) + 2 > self.max_tokens:
            raise ValueError(tr("the prompt is too long: {n} words, at most {limit}", n=len(words),
                                limit=self.max_tokens - 2))
        ids = [START, *(self.ids[w] for w in words), END]
        return torch.tensor(ids + [PAD] * (self.max_tokens - len(ids)), dtype=torch.long)

    def encode_batch(self, texts: list[str], allow_empty: bool = False) -> torch.Tensor:
        """Several prompts -> (B, MAX_TOKENS) ids."""
        return torch.stack([self.encode(t, allow_empty) for t in texts])

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Ids -> the words between ``<start>`` and ``<end>``."""
        return [self.tokens[i] for i in ids.tolist() if i > END]

