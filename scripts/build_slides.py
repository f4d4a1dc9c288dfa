"""Static reveal.js slides of the lessons, fully offline: ``make slides`` -> artifacts/slides/.

Each lesson becomes ``NN_name.slides.html`` (``nbconvert --to slides`` with the slide metadata
that ``scripts/slides.py`` writes). Nothing is fetched from the web: reveal.js, MathJax 2,
require.js and jQuery come from the npm packages pinned in ``package.json`` (``npm ci`` puts
them in ``node_modules/``) and are copied into ``artifacts/slides/lib/``, so the folder can be
carried to a lecture-room PC and opened from disk. The template (``scripts/slides_template``)
drops nbconvert's two CDN imports (Mermaid, the ipywidgets manager) and adds the RISE slide
style ``notebooks/rise.css``. ``tests/test_slides.py`` checks that no script or style sheet
in the HTML points at an http(s) URL.

    python scripts/build_slides.py                  # all lessons
    python scripts/build_slides.py --out DIR notebooks/04_diffusion.ipynb
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "node_modules"
TEMPLATES = ROOT / "scripts" / "slides_template"
LESSONS = sorted((ROOT / "notebooks").glob("0[0-9]_*.ipynb"))

# (source under node_modules, destination under lib/): only what the slides load.
ASSETS = [
    ("reveal.js/dist", "reveal.js/dist"),
    ("reveal.js/plugin/notes", "reveal.js/plugin/notes"),
    ("requirejs/require.js", "require.js"),
    ("jquery/dist/jquery.min.js", "jquery.min.js"),
    ("mathjax/MathJax.js", "mathjax/MathJax.js"),
    ("mathjax/config/TeX-AMS_CHTML-full.js", "mathjax/config/TeX-AMS_CHTML-full.js"),
    ("mathjax/config/Safe.js", "mathjax/config/Safe.js"),
    ("mathjax/extensions", "mathjax/extensions"),
    ("mathjax/jax/input/TeX", "mathjax/jax/input/TeX"),
    ("mathjax/jax/output/CommonHTML", "mathjax/jax/output/CommonHTML"),
    ("mathjax/jax/element", "mathjax/jax/element"),
    ("mathjax/fonts/HTML-CSS/TeX/woff", "mathjax/fonts/HTML-CSS/TeX/woff"),
]


def copy_assets(out: Path) -> None:
    """Copy the JavaScript and CSS the slides load into ``out/lib``."""
    if not (NODE / "reveal.js").is_dir():
        raise FileNotFoundError(f"{NODE / 'reveal.js'} is missing: run `npm ci` in {ROOT} (or `make slides`)")
    for source, target in ASSETS:
        src, dst = NODE / source, out / "lib" / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def exporter():
    from nbconvert import SlidesExporter

    return SlidesExporter(
        template_name="reveal_offline", extra_template_basedirs=[str(TEMPLATES)],
        reveal_url_prefix="lib/reveal.js", reveal_theme="white", reveal_transition="none",
        reveal_width="1280", reveal_height="800",
        require_js_url="lib/require.js", jquery_url="lib/jquery.min.js",
        mathjax_url="lib/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe")


def build(notebooks: list[Path], out: Path) -> dict[str, float]:
    """Write ``out/NN_name.slides.html`` for each notebook; return seconds per lesson."""
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    export, css = exporter(), (ROOT / "notebooks" / "rise.css").read_text()
    seconds = {}
    for path in notebooks:
        start = time.perf_counter()
        body, _ = export.from_filename(str(path), resources={"rise_css": css})
        (out / f"{path.stem}.slides.html").write_text(body, encoding="utf-8")
        seconds[path.stem] = time.perf_counter() - start
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "slides")
    parser.add_argument("notebooks", nargs="*", type=Path, default=LESSONS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    seconds = build(args.notebooks, args.out)
    for name, s in seconds.items():
        print(f"{args.out / name}.slides.html: {s:.1f} s")
    print(f"{len(seconds)} lesson(s) in {time.perf_counter() - start:.1f} s (assets copied included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
