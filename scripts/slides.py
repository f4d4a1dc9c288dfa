"""Slide metadata for the lesson notebooks: one set of rules, re-applied after every edit.

Every cell of ``notebooks/0[0-8]_*.ipynb`` gets ``metadata.slideshow.slide_type``, the
key that RISE (``jupyterlab-rise``, the ``teach`` extra) and ``nbconvert --to slides``
(``make slides``) read:

* ``slide``: the title cell and every ``## `` section heading start a new slide;
* ``subslide``: a ``### `` heading, an exercise / question / prediction prompt, or a cell
  that no longer fits under the cells above it (a vertical step down inside the section);
* ``fragment``: the check cell under an exercise (its verdict appears on the next key press)
  and a short answer cell under its prompt;
* ``skip``: set-up code (imports, ``TRAIN = False``, the run-time print), never shown;
* ``notes``: reference material taller than a screen (summary with references and glossary,
  "Under the hood"): speaker notes (RISE: key ``T``), not a slide;
* ``-``: everything else continues the current (sub)slide.

Fitting is estimated from the sources and the saved outputs (PNG sizes read from their
headers) for a 1280x800 browser window at JupyterLab's default font sizes; the browser test
``tests/e2e/test_slides_browser.py`` measures the real thing. ``notebooks/rise.css`` (loaded by RISE) caps code, printed output and figures
so that no single cell outgrows a screen. The notebook-level
``metadata.rise`` picks a theme that needs no web fonts (``white``: RISE's default
``simple`` theme fetches Google Fonts) and turns RISE's own keyboard help off.

    python scripts/slides.py            # write the metadata (only metadata; sources, outputs, ids untouched)
    python scripts/slides.py --check    # exit 1 and name every cell whose metadata differs from the rules
    python scripts/slides.py --count    # slides (and sub-slides) per lesson
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("0[0-8]_*.ipynb"))
TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
RISE = {"theme": "white", "transition": "none", "scroll": False, "enable_chalkboard": False}

# --- the height model (pixels in a 1280x800 window, JupyterLab 4 defaults) --------------------
BUDGET = 690           # usable height of one slide (800 minus reveal's margins, progress bar and controls)
WIDTH = 1180           # usable width of a cell's content
CHARS_PER_LINE = 160   # prose at 14 px
LINE = 24              # one line of prose
CODE_LINE = 18         # one line of code or text output
CELL_PAD = 22          # padding and margins around a cell
TALL_MARKDOWN = 0.9    # a markdown cell above this share of BUDGET, alone, cannot share a slide
CODE_CAP = 0.38 * 800  # notebooks/rise.css: a code input taller than 38vh scrolls inside its box
IMAGE_CAP = 0.45 * 800  # notebooks/rise.css: figures are at most 45vh tall
TEXT_CAP = 0.40 * 800  # notebooks/rise.css: a long printed output scrolls inside its box

PROMPT = re.compile(r"^\*\*(Exercise|Question|Quiz|Predict, then run)")
SETUP_MARKERS = ("notebook_start = time.perf_counter()", "notebook ran in", "notebook compute time")


def _png_size(b64: str) -> tuple[int, int]:
    """(width, height) of a base64 PNG, read from its IHDR chunk."""
    header = base64.b64decode(b64[:44])
    return struct.unpack(">II", header[16:24])


def markdown_height(src: str) -> int:
    """Estimated rendered height of a markdown cell."""
    height, in_math = CELL_PAD, False
    for line in src.splitlines():
        stripped = line.strip()
        if "$$" in stripped or in_math:  # display maths: one equation line, or one line of a block
            if stripped.count("$$") == 1:
                in_math = not in_math
            height += 56 if stripped.count("$$") == 2 else 26
            continue
        if not stripped:
            height += 12
        elif stripped.startswith("# "):
            height += 64 * (1 + len(stripped) // 45)
        elif stripped.startswith("## "):
            height += 48 * (1 + len(stripped) // 60)
        elif stripped.startswith("### "):
            height += 38
        elif stripped.startswith("|"):
            height += 0 if set(stripped) <= set("|-: ") else 30
        else:
            text = re.sub(r"\$[^$]*\$", "xxxx", stripped)  # inline maths is narrower than its source
            text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are not shown
            rows = 1 + len(text) // CHARS_PER_LINE
            height += rows * LINE + (4 if stripped.startswith(("-", "*", "1.")) else 0)
    return height


def output_height(output: dict) -> int:
    data = output.get("data", {})
    if "image/png" in data:
        width, height = _png_size(data["image/png"])
        return int(min(IMAGE_CAP, height * min(1.0, WIDTH / width))) + 10
    if output.get("output_type") == "stream":
        return int(min(TEXT_CAP, CODE_LINE * len("".join(output["text"]).splitlines()))) + 10
    if "application/vnd.jupyter.widget-view+json" in data:
        return 40  # RISE shows a placeholder; the live explorer belongs in the notebook view
    text = data.get("text/plain", "")
    return CODE_LINE * len("".join(text).splitlines()) + 10 if text else 0


def cell_height(cell: dict) -> int:
    src = "".join(cell["source"])
    if cell["cell_type"] != "code":
        return markdown_height(src)
    code = min(CODE_CAP, CODE_LINE * len(src.splitlines()))
    return int(CELL_PAD + code + sum(output_height(o) for o in cell.get("outputs", [])))


# --- the rules ----------------------------------------------------------------------------------

def role(cell: dict, index: int) -> str:
    """What a cell is for, from its source: title, section, step, prompt, setup, solution, check, answer,
    reference, text or code."""
    src = "".join(cell["source"]).lstrip()
    if cell["cell_type"] == "markdown":
        if index == 0:
            return "title"
        if src.startswith(("## Summary", "## Under the hood")):
            return "reference"
        if src.startswith("## "):
            return "section"
        if src.startswith("### "):
            return "step"
        return "prompt" if PROMPT.match(src) else "text"
    if cell["cell_type"] != "code":
        return "text"
    if src.startswith("TRAIN =") or any(marker in src for marker in SETUP_MARKERS):
        return "setup"
    grade = cell.get("metadata", {}).get("nbgrader", {})
    if "### BEGIN SOLUTION" in src:
        return "solution"
    if src.startswith("def my_answer_") or src.startswith("def my_prediction_"):
        return "answer"
    if grade.get("grade") or "# NBVAL_CHECK_OUTPUT" in src and grade:
        return "check"
    return "code"


START = {"title": "slide", "section": "slide", "step": "subslide", "prompt": "subslide", "setup": "skip"}
FOLLOW = {"check": "fragment", "answer": "fragment", "solution": "fragment"}


def slide_types(cells: list[dict]) -> list[str]:
    """The slide type of every cell: the role sets where slides start; heights add sub-slides."""
    types, used = [], 0
    for index, cell in enumerate(cells):
        kind, height = role(cell, index), cell_height(cell)
        if kind == "reference":  # a short summary is the last slide; a long one the lecturer's notes
            types.append("notes" if height > BUDGET else "slide")
            used = height
            continue
        kind_type = START.get(kind) or FOLLOW.get(kind, "-")
        if kind_type in ("slide", "subslide"):
            used = height
        elif kind_type == "skip":
            pass
        elif used + height > BUDGET or (cell["cell_type"] == "markdown" and height > TALL_MARKDOWN * BUDGET):
            kind_type, used = "subslide", height  # does not fit under what is on screen: one step down
        else:
            used += height
        types.append(kind_type)
    return types


def apply(raw: dict) -> list[tuple[int, str | None, str]]:
    """Set the metadata in ``raw`` (a notebook as JSON); return (index, old, new) for each change."""
    changes = []
    for index, (cell, new) in enumerate(zip(raw["cells"], slide_types(raw["cells"]))):
        show = cell.setdefault("metadata", {}).setdefault("slideshow", {})
        old = show.get("slide_type")
        if old != new:
            changes.append((index, old, new))
            show["slide_type"] = new
    if raw["metadata"].get("rise") != RISE:
        changes.append((-1, str(raw["metadata"].get("rise")), str(RISE)))
        raw["metadata"]["rise"] = dict(RISE)
    return changes


def count(raw: dict) -> dict:
    """Slides (horizontal) and sub-slides (vertical steps) a lesson shows, plus its speaker notes."""
    kinds = [c.get("metadata", {}).get("slideshow", {}).get("slide_type", "-") for c in raw["cells"]]
    return {"slides": kinds.count("slide"), "subslides": kinds.count("subslide"),
            "screens": kinds.count("slide") + kinds.count("subslide"),
            "fragments": kinds.count("fragment"), "skipped": kinds.count("skip"), "notes": kinds.count("notes")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    parser.add_argument("--count", action="store_true", help="print slides per lesson")
    parser.add_argument("notebooks", nargs="*", type=Path, default=LESSONS)
    args = parser.parse_args(argv)
    stale = 0
    for path in args.notebooks:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
        changes = apply(raw)
        if args.count:
            print(f"{path.name}: {json.dumps(count(raw))}")
        if args.check:
            for index, old, new in changes:
                print(f"{path.name}: cell {index}: slide_type {old!r}, the rules say {new!r}")
            stale += bool(changes)
        elif changes and not args.count:
            path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path.name}: {len(changes)} cell(s) updated")
    if stale:
        print("run `python scripts/slides.py` to re-apply the rules", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
