"""Text corpora for language modelling, read from ``data/text/`` (lesson 05).

Three shipped UTF-8 files (built by ``scripts/make_text_corpora.py``, see data/README.md):

=================  ==========  ===========================================================
name               size        what
=================  ==========  ===========================================================
``shakespeare``    1.04 MB     eight plays, Project Gutenberg (public domain), ASCII
``zh_pretrain``    0.29 MB     Song poems + modern Chinese prose from Debian's fortunes-zh
``tang300``        0.08 MB     the 313 poems of 唐诗三百首 (fortunes-zh, GPL-3.0+ packaging)
=================  ==========  ===========================================================

A corpus becomes a 1-D tensor of token ids; a training batch is ``batch``
random windows of ``block + 1`` consecutive tokens, the first ``block`` the
input and the last ``block`` (shifted by one) the targets. The last 10% of each
corpus is held out for validation (for Tang poems: the last 10% of the poems).
"""
from __future__ import annotations

import torch

from aigc_course.core.assets import asset_path

CORPORA = ("shakespeare", "zh_pretrain", "tang300")


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
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random windows of a 1-D token tensor: inputs (batch, block) and next-token targets.

    y[b, t] = x[b, t + 1]: at every position the model predicts the token that follows.
    """
    if len(data) <= block + 1:
        raise ValueError(f"the text has {len(data)} tokens, too few for windows of {block + 1}")
    starts = torch.randint(len(data) - block - 1, (batch,), generator=generator)
    offsets = torch.arange(block + 1)
    windows = data[starts[:, None] + offsets]                                  # (batch, block + 1)
    return windows[:, :-1].to(device), windows[:, 1:].to(device)


def sequential_batches(data: torch.Tensor, block: int, batch: int, max_windows: int | None = None):
    """Non-overlapping windows covering ``data`` in order (for a deterministic validation loss)."""
    n = (len(data) - 1) // block
    if max_windows is not None:
        n = min(n, max_windows)
    for i in range(0, n, batch):
        starts = torch.arange(i, min(i + batch, n)) * block
        windows = data[starts[:, None] + torch.arange(block + 1)]
        yield windows[:, :-1], windows[:, 1:]
