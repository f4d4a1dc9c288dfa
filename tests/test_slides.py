"""Slides from the lessons: the metadata rules (scripts/slides.py) and the offline static build (scripts/build_slides.py)."""
import copy
import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_slides  # noqa: E402
import slides  # noqa: E402


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(keepends=True)}


def code(text, outputs=(), grade=None):
    meta = {"nbgrader": grade} if grade else {}
    return {"cell_type": "code", "metadata": meta, "source": text.splitlines(keepends=True),
            "outputs": list(outputs), "execution_count": 1}


def test_every_lesson_carries_the_metadata_the_rules_give():
    assert slides.LESSONS and len(slides.LESSONS) == 10
    assert slides.main(["--check", *map(str, slides.LESSONS)]) == 0, "run `python scripts/slides.py`"


def test_headings_prompts_setup_and_exercises_get_their_slide_types():
    cells = [md("# 09 · A lesson\n\ngoals"), code("TRAIN = False"),
             code("import time\nnotebook_start = time.perf_counter()"),
             md("## 1. Theory\n\nsome words"), md("### A step"),
             md("**Exercise 9.1: a loss.** Write it."),
             code("def my_loss(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION", grade={"solution": True}),
             code("# NBVAL_CHECK_OUTPUT\ncheck(my_loss)", grade={"grade": True, "points": 1}),
             md("**Predict, then run.** Which?"), code("def my_prediction_x():\n    return 'A'"),
             code("print(1)"), code('print(f"notebook ran in {t:.0f} s")')]
    assert slides.slide_types(cells) == ["slide", "skip", "skip", "slide", "subslide", "subslide", "fragment",
                                         "fragment", "subslide", "fragment", "-", "skip"]


def test_a_cell_that_does_not_fit_under_the_others_starts_a_subslide():
    tall = "\n".join(f"a paragraph line {i}" for i in range(18))  # 18 lines of prose: about 450 px
    types = slides.slide_types([md("## 1. Section\n\n" + tall), md(tall), md("one short line")])
    assert types == ["slide", "subslide", "-"]


def test_reference_material_taller_than_a_screen_becomes_speaker_notes_and_short_summaries_stay():
    long = "## Summary\n" + "\n".join(f"- point {i}" for i in range(40))
    assert slides.slide_types([md("# T"), md(long)]) == ["slide", "notes"]
    assert slides.slide_types([md("# T"), md("## Summary\n- one\n- two")]) == ["slide", "slide"]


def test_figure_height_is_read_from_the_png_header_and_capped_like_rise_css():
    png = "iVBORw0KGgoAAAANSUhEUgAABLAAAAH0CAYAAAAt0NQS"  # IHDR of a 1200 x 500 PNG
    assert slides._png_size(png) == (1200, 500)
    height = slides.output_height({"output_type": "display_data", "data": {"image/png": png}})
    assert height == 360 + 10  # scaled to 1180 px wide it would be 491 px tall; rise.css caps it at 45% of 800
    assert "max-height: 45vh" in (ROOT / "notebooks" / "rise.css").read_text()  # IMAGE_CAP = 0.45 * 800


def test_apply_changes_only_slide_metadata():
    path = ROOT / "notebooks" / "04_diffusion.ipynb"
    raw = json.loads(path.read_text())
    stripped = copy.deepcopy(raw)
    del stripped["metadata"]["rise"]
    for cell in stripped["cells"]:
        del cell["metadata"]["slideshow"]
    again = copy.deepcopy(stripped)
    assert len(slides.apply(again)) == len(raw["cells"]) + 1  # every cell, plus the notebook's rise settings
    assert again == raw  # the same file back: sources, outputs, ids untouched
    assert path.read_text() == json.dumps(raw, indent=1, ensure_ascii=False) + "\n"


class _Refs(HTMLParser):
    """Every script src, stylesheet href and module import in a page."""

    def __init__(self):
        super().__init__()
        self.refs, self._script = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._script = True
            if attrs.get("src"):
                self.refs.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.refs.append(attrs["href"])

    def handle_endtag(self, tag):
        self._script = self._script and tag != "script"

    def handle_data(self, data):
        if self._script:
            self.refs += re.findall(r"""(?:import\s[^'"]*from\s*|import\(\s*|require\(\s*\[?\s*)['"]([^'"]+)['"]""", data)
            self.refs += re.findall(r"""['"]((?:https?:)?//[^'"]+)['"]""", data)


def test_static_slides_load_nothing_from_the_web(tmp_path):
    if not (build_slides.NODE / "reveal.js").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: node_modules/ is missing (`npm ci`)")
        pytest.skip("node_modules/ is missing: `npm ci` (make slides / make test do it)")
    seconds = build_slides.build([ROOT / "notebooks" / "04_diffusion.ipynb"], tmp_path)
    page = tmp_path / "04_diffusion.slides.html"
    parser = _Refs()
    parser.feed(page.read_text())
    refs = parser.refs
    assert "lib/reveal.js/dist/reveal.css" in refs and "lib/require.js" in refs
    remote = [r for r in refs if re.match(r"(https?:)?//", r)]
    assert remote == [], f"scripts or styles from the web: {remote}"
    local = {r.split("?")[0] for r in refs if not r.startswith(("data:", "#"))}
    local |= {"lib/reveal.js/dist/reveal.js", "lib/reveal.js/plugin/notes/notes.js"}  # loaded by require.js
    missing = [r for r in local if not (tmp_path / r).is_file()]
    assert missing == [], f"referenced but not copied: {missing}"
    for needed in ("lib/mathjax/config/TeX-AMS_CHTML-full.js", "lib/mathjax/jax/output/CommonHTML/jax.js"):
        assert (tmp_path / needed).is_file()
    assert seconds["04_diffusion"] < 60


def test_copy_assets_names_the_fix_when_node_modules_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(build_slides, "NODE", tmp_path / "node_modules")
    with pytest.raises(FileNotFoundError, match="npm ci"):
        build_slides.copy_assets(tmp_path / "out")


def test_the_reference_finder_sees_every_way_a_page_loads_from_the_web():
    page = ('<link rel="stylesheet" href="//fonts.example/a.css"><script src="https://cdn.example/reveal.js"></script>'
            '<script type="module">import mermaid from "https://cdn.example/mermaid.mjs";</script>'
            '<script>require(["https://unpkg.example/w.js"], function () {});</script>'
            '<script src="lib/require.js"></script><p>https://example.org in prose is not loaded</p>')
    parser = _Refs()
    parser.feed(page)
    remote = {r for r in parser.refs if re.match(r"(https?:)?//", r)}
    assert remote == {"//fonts.example/a.css", "https://cdn.example/mermaid.mjs", "https://cdn.example/reveal.js",
                      "https://unpkg.example/w.js"}
    assert "lib/require.js" in parser.refs
