"""Captions for the digits, in English and Chinese, written by a small grammar from measured attributes.

A text-to-image model needs (image, caption) pairs. Ours are made, not
collected: :mod:`aigc_course.data.attributes` measures each digit's stroke
thickness, slant and size, and the grammar below turns the digit's class and
those levels into a sentence, with random choices so the same digit gets many
phrasings::

    a thin seven leaning right          the digit 7, bold, upright
    一个细长向右倾斜的 7                  数字 3，粗体，小

Every word of the grammar says one thing (:data:`WORDS`: word -> (attribute,
level)), so a prompt can also be read back into what it asks for
(:func:`requested`), which is how the lesson checks that a generated digit
matches its prompt. A caption leaves the middle level of an attribute unsaid
most of the time, as people do ("a 7" is a regular, upright, medium 7).
"""
from __future__ import annotations

import random

from aigc_course.data.attributes import ATTRIBUTES

LANGUAGES = ("en", "zh")

DIGITS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGITS_ZH = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九")

# (attribute, level) -> the words that say it, per language. Level 1 (the middle) is said only sometimes.
ADJECTIVES = {
    "en": {("thickness", 0): ("thin", "skinny", "light"), ("thickness", 2): ("bold", "thick", "heavy"),
           ("thickness", 1): ("regular",),
           ("size", 0): ("small", "narrow"), ("size", 2): ("large", "wide", "big"), ("size", 1): ("medium",),
           ("slant", 1): ("upright", "straight")},
    "zh": {("thickness", 0): ("细", "细长", "纤细"), ("thickness", 2): ("粗", "粗体", "加粗"),
           ("thickness", 1): ("普通",),
           ("size", 0): ("小", "窄"), ("size", 2): ("大", "宽"), ("size", 1): ("中等",),
           ("slant", 0): ("向左倾斜", "左倾"), ("slant", 2): ("向右倾斜", "右倾", "倾斜"),
           ("slant", 1): ("端正", "直立")},
}
# English says a slant after the noun ("a 7 leaning right"), or as one adjective ("a slanted 7").
SLANT_PHRASES = {0: ("leaning left", "tilted left", "slanted left"),
                 2: ("leaning right", "tilted right", "slanted right")}
SLANT_RIGHT_ADJECTIVE = "slanted"
FILLERS_EN = ("a", "an", "the", "digit", "number", "written", "and")
FILLERS_ZH = ("一个", "的", "数字", "写得")


def _words() -> dict[str, tuple[str, int]]:
    table = {}
    for lang in LANGUAGES:
        for (attribute, level), words in ADJECTIVES[lang].items():
            table.update({w: (attribute, level) for w in words})
    for level, phrases in SLANT_PHRASES.items():
        table.update({p: ("slant", level) for p in phrases})
    table[SLANT_RIGHT_ADJECTIVE] = ("slant", 2)
    for d in range(10):
        table.update({DIGITS_EN[d]: ("digit", d), DIGITS_ZH[d]: ("digit", d), str(d): ("digit", d)})
    return table


WORDS: dict[str, tuple[str, int]] = _words()   # every meaningful word or phrase -> (attribute or "digit", level)


def _say(lang: str, attribute: str, level: int, rng: random.Random) -> str:
    return rng.choice(ADJECTIVES[lang][(attribute, level)])


def _chosen(row: dict[str, int], rng: random.Random, full: bool) -> list[str]:
    """Which attributes the caption mentions: every non-middle one if ``full``, else each with probability 0.7
    (a middle level with probability 0.15)."""
    if full:
        return [a for a in ATTRIBUTES if row[a] != 1]
    return [a for a in ATTRIBUTES if rng.random() < (0.7 if row[a] != 1 else 0.15)]


def caption_en(row: dict[str, int], rng: random.Random, full: bool = False) -> str:
    """One English caption of a digit ``row`` ({"digit", "thickness", "slant", "size"} -> levels)."""
    said = _chosen(row, rng, full)
    digit = DIGITS_EN[row["digit"]] if full or rng.random() < 0.5 else str(row["digit"])
    adjectives = [ADJECTIVES["en"][(a, row[a])][0] if full else _say("en", a, row[a], rng)
                  for a in ("size", "thickness") if a in said]
    after = ""
    if "slant" in said:
        if row["slant"] == 1:
            adjectives.append(rng.choice(ADJECTIVES["en"][("slant", 1)]))
        elif row["slant"] == 2 and not full and rng.random() < 0.25:
            adjectives.append(SLANT_RIGHT_ADJECTIVE)
        else:
            after = " " + (SLANT_PHRASES[row["slant"]][0] if full else rng.choice(SLANT_PHRASES[row["slant"]]))
    if not full and adjectives and rng.random() < 0.3:   # "the digit 7, thin, leaning right"
        return f"the digit {digit}, " + ", ".join(adjectives) + ("," + after if after else "")
    words = [*adjectives, digit]
    article = "an" if words[0][0] in "aeiou8" else "a"
    return f"{article} {' '.join(words)}{after}"


def caption_zh(row: dict[str, int], rng: random.Random, full: bool = False) -> str:
    """One Chinese caption of a digit ``row``: "一个细长向右倾斜的 7", "数字 3，粗体，小"."""
    said = _chosen(row, rng, full)
    digit = str(row["digit"]) if full or rng.random() < 0.7 else DIGITS_ZH[row["digit"]]
    words = [_say("zh", a, row[a], rng) if not full else ADJECTIVES["zh"][(a, row[a])][0]
             for a in ("size", "thickness", "slant") if a in said]
    if not full and words and rng.random() < 0.3:
        return f"数字 {digit}，" + "，".join(words)
    return f"一个{''.join(words)}的 {digit}" if words else f"一个 {digit}"


def caption(row: dict[str, int], lang: str, rng: random.Random, full: bool = False) -> str:
    """A caption of a digit ``row`` in ``lang`` ("en" or "zh"). ``full``: every non-middle attribute, the first
    word for each (one fixed caption per attribute combination, used for retrieval and evaluation)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {lang!r}")
    return (caption_en if lang == "en" else caption_zh)(row, rng, full)


def requested(tokens: list[str]) -> dict[str, int]:
    """What a tokenised prompt asks for: {"digit": 7, "thickness": 0, ...}; unmentioned attributes are absent.

    A later word wins when two disagree ("a thin bold 7" asks for bold).
    """
    asked = {}
    for token in tokens:
        if token in WORDS:
            attribute, level = WORDS[token]
            asked[attribute] = level
    return asked


def caption_pool(attributes, per_language: int = 4, seed: int = 0) -> list[list[str]]:
    """``per_language`` random English and as many Chinese captions for every digit of ``attributes``
    (a :class:`~aigc_course.data.attributes.DigitAttributes`): a list of 2 * per_language captions per digit.
    Training draws one of them per step, so every digit is seen with many phrasings, in both languages."""
    rng = random.Random(seed)
    return [[caption(attributes.row(i), lang, rng) for lang in LANGUAGES for _ in range(per_language)]
            for i in range(len(attributes))]


def full_captions(attributes, lang: str = "en") -> list[str]:
    """The fixed, complete caption of every digit (every non-middle attribute, first words): for evaluation."""
    rng = random.Random(0)
    return [caption(attributes.row(i), lang, rng, full=True) for i in range(len(attributes))]
