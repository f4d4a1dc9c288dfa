"""Two languages, one source: the course's user-visible strings in English and Simplified Chinese.

Every string a learner reads that comes from the package (a figure title, an
axis label, a widget label, an exercise verdict) is written in English and
passed through :func:`tr`::

    from aigc_course.core.i18n import tr
    ax.set_title(tr("Reconstructions"))
    print(tr("Exercise {id}: correct", id="1.2"))

``tr`` looks the English text up in one message table,
``aigc_course/core/messages_zh.json`` (English -> 中文), when the language is
Chinese, and fills in the ``{fields}`` after translating, so numbers and names
are never part of a key. The English text *is* the key: when someone edits an
English string, its old translation no longer matches and
``tests/test_i18n.py`` names the string that needs a new one.

The language comes from :func:`set_language` (the Chinese notebooks call
``set_language("zh")`` in their first code cell) or the ``AIGC_LANG``
environment variable; English is the default.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("en", "zh")
MESSAGES_ZH = Path(__file__).with_name("messages_zh.json")

_language = os.environ.get("AIGC_LANG", "en")


def _check(lang: str) -> str:
    lang = {"zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh"}.get(lang.lower(), lang.lower())
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


def set_language(lang: str) -> str:
    """Switch the package's messages (and figure fonts) to ``"en"`` or ``"zh"``; return the language."""
    global _language
    _language = _check(lang)
    use_cjk_font()
    return _language


def language() -> str:
    """The current language, ``"en"`` or ``"zh"``."""
    return _check(_language)


@lru_cache(maxsize=1)
def messages_zh() -> dict[str, str]:
    """The message table: English text -> Chinese text."""
    return json.loads(MESSAGES_ZH.read_text(encoding="utf-8"))


def tr(english: str, /, **fields) -> str:
    """``english`` in the current language, with ``{fields}`` filled in.

    A string missing from the table falls back to English (the tests make sure
    none is missing), so a learner never sees an error because of a message.
    """
    text = messages_zh().get(english, english) if language() == "zh" else english
    return text.format(**fields) if fields else text


def cjk_font_file() -> Path | None:
    """The Noto Sans CJK font (SIL OFL 1.1) that the PyPI package ``noto-cjk-sans-otc`` installs, if present."""
    try:
        import noto_cjk_sans_otc
    except ImportError:
        return None
    path = Path(str(noto_cjk_sans_otc.FONT_PATH))
    return path if path.is_file() else None


def use_cjk_font(first: bool | None = None) -> str | None:
    """Let matplotlib draw Chinese glyphs; return the CJK family used, or None when no CJK font is found.

    In English the CJK font is a *fallback* after matplotlib's default family:
    Latin letters, digits and maths keep their usual look (English figures do
    not change) and only glyphs that font lacks, such as 汉字, come from Noto
    Sans CJK SC. In Chinese (``first=True``, the default when the language is
    ``"zh"``) the CJK font comes first, because text that mixes 汉字 with
    ``$maths$`` is drawn by mathtext with the first family only.
    """
    try:
        from matplotlib import font_manager, rcParams
    except ImportError:  # matplotlib is optional for the core layer
        return None
    path = cjk_font_file()
    if path is not None and path.name not in {Path(f.fname).name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(path))
    available = {f.name for f in font_manager.fontManager.ttflist}
    family = next((f for f in CJK_FAMILIES if f in available), None)
    if family is None:
        return None
    first = language() == "zh" if first is None else first
    base = [f for f in rcParams["font.family"] if f != family]
    if not base or base == ["sans-serif"]:
        base = [rcParams["font.sans-serif"][0]]  # DejaVu Sans: a fallback list needs concrete family names
    rcParams["font.family"] = [family, *base] if first else [*base, family]
    return family


# Noto Sans CJK SC first: the Simplified-Chinese glyph forms of the collection.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei")
