"""Text corpora for language modelling, read from ``data/text/`` (lesson 05).

Four shipped UTF-8 files (built by ``scripts/make_text_corpora.py`` and
``scripts/make_tang_poems.py``, see data/README.md):

=================  ==========  ===========================================================
name               size        what
=================  ==========  ===========================================================
``shakespeare``    1.04 MB     eight plays, Project Gutenberg (public domain), ASCII
``zh_pretrain``    0.29 MB     Song poems + modern Chinese prose from Debian's fortunes-zh
``tang300``        0.08 MB     the 313 poems of 唐诗三百首 (fortunes-zh, GPL-3.0+ packaging)
``tang_poems``     1.31 MB     10,698 Tang quatrains and regulated verses, Simplified (npm
                               ``chinese-poetry``, MIT): one couplet per line, no titles
=================  ==========  ===========================================================

A corpus becomes a 1-D tensor of token ids; a training batch is ``batch``
random windows of ``block + 1`` consecutive tokens, the first ``block`` the
input and the last ``block`` (shifted by one) the targets. The last 10% of each
corpus is held out for validation (for the poem files: the last 10% of the poems).
:func:`poems` and :func:`verse_lines` read a poem file's structure.
"""
from __future__ import annotations

import re

import torch

from aigc_course.core.assets import asset_path

CORPORA = ("shakespeare", "zh_pretrain", "tang300", "tang_poems")
#: What ends a line of verse in the poem files: the comma inside a couplet, the stop (or ? !) after it.
VERSE_ENDS = "，。？！；"


def load_corpus(name: str) -> str:
    """The text of a shipped corpus (checked against its sha256 first)."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    return asset_path(f"text/{name}.txt").read_text(encoding="utf-8")


def split_text(text: str, val_fraction: float = 0.1, boundary: str | None = None) -> tuple[str, str]:
    """(train, validation): the last ``val_fraction`` of the text is held out.

    With ``boundary`` (e.g. ``"\\n\\n"`` between poems) the cut moves forward to
    the next boundary, so no poem is split between the two parts.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(len(text) * (1 - val_fraction))
    if boundary:
        found = text.find(boundary, cut)
        cut = found + len(boundary) if found != -1 else cut
    return text[:cut], text[cut:]


def random_batch(data: torch.Tensor, block: int, batch: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", starts: torch.Tensor | None = None, aligned: float = 0.0,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random windows of a 1-D token tensor: inputs (batch, block) and next-token targets.

    y[b, t] = x[b, t + 1]: at every position the model predicts the token that follows.
    With ``starts`` (e.g. :func:`boundary_starts`) the first ``round(aligned * batch)``
    windows begin at one of those positions, the rest anywhere.
    """
    if len(data) <= block + 1:
        raise ValueError(f"the text has {len(data)} tokens, too few for windows of {block + 1}")
    if not 0 <= aligned <= 1:
        raise ValueError(f"aligned is a share of the batch, in [0, 1]; got {aligned}")
    n_aligned = round(aligned * batch) if starts is not None else 0
    starts_anywhere = torch.randint(len(data) - block - 1, (batch - n_aligned,), generator=generator)
    if n_aligned:
        usable = starts[starts < len(data) - block - 1]
        if not len(usable):
            raise ValueError("no usable aligned start: every boundary is too close to the end of the text")
        picked = usable[torch.randint(len(usable), (n_aligned,), generator=generator)]
        starts = torch.cat([picked, starts_anywhere])
    else:
        starts = starts_anywhere
    offsets = torch.arange(block + 1)
    windows = data[starts[:, None] + offsets]                                  # (batch, block + 1)
    return windows[:, :-1].to(device), windows[:, 1:].to(device)


def boundary_starts(ids: torch.Tensor, boundary: list[int]) -> torch.Tensor:
    """Positions where the token sequence ``boundary`` begins in ``ids`` (e.g. the ids of a blank line).

    A training window that starts there begins with the boundary and then a new
    poem, exactly like the prompt ``"\n\n" + first character`` at generation time.
    """
    k = len(boundary)
    if k == 0 or len(ids) < k:
        return torch.zeros(0, dtype=torch.long)
    hits = torch.ones(len(ids) - k + 1, dtype=torch.bool)
    for j, token in enumerate(boundary):
        hits &= ids[j:len(ids) - k + 1 + j] == token
    return hits.nonzero().flatten()


def sequential_batches(data: torch.Tensor, block: int, batch: int, max_windows: int | None = None):
    """Non-overlapping windows covering ``data`` in order (for a deterministic validation loss)."""
    n = (len(data) - 1) // block
    if max_windows is not None:
        n = min(n, max_windows)
    for i in range(0, n, batch):
        starts = torch.arange(i, min(i + batch, n)) * block
        windows = data[starts[:, None] + torch.arange(block + 1)]
        yield windows[:, :-1], windows[:, 1:]


def poems(text: str) -> list[str]:
    """The poems of a poem file: blocks of text separated by blank lines (surrounding newlines stripped)."""
    return [block.strip("\n") for block in text.split("\n\n") if block.strip()]


def verse_lines(poem: str) -> list[str]:
    """The lines of verse (诗句) of one poem, without their punctuation.

    A verse line ends at ， 。 ？ ！ or ；, so the couplet ``床前明月光，疑是地上霜。``
    is two lines. Rows with none of these marks (a title such as ``《春晓》``, an
    author line) are not verse and are skipped; spaces are dropped.
    """
    lines = []
    for row in poem.split("\n"):
        if any(mark in row for mark in VERSE_ENDS):
            # an unfinished last piece still counts (generated text may stop mid-line)
            lines += [x for x in re.split(f"[{VERSE_ENDS}]", row.replace(" ", "").replace("\u3000", "")) if x]
    return lines


def poems_of_line_length(text: str, length: int) -> str:
    """The poems of ``text`` whose lines all have ``length`` characters (5: 五言, 7: 七言), same format."""
    kept = [p for p in poems(text) if (lines := verse_lines(p)) and all(len(x) == length for x in lines)]
    return "\n\n".join(kept) + "\n" if kept else ""
