"""Lesson 04 as a RISE slideshow (jupyterlab-rise) in headless Chromium: every slide fits the screen.

open /rise/04_diffusion.ipynb in a 1280x800 window -> press Space through every slide and fragment ->
each (sub)slide lies inside the viewport, nothing spills over -> the slide count equals the metadata's
-> no console errors, no request leaves 127.0.0.1. One screenshot per slide goes to artifacts/e2e/slides/.
`make test` presents lesson 04 (about 30 s); AIGC_E2E_SLIDES=all (or a comma-separated list of
notebooks) presents more, e.g. after re-applying scripts/slides.py.
"""
import json
import os
import sys
import time

import pytest

import labdriver

sys.path.insert(0, str(labdriver.REPO / "scripts"))
import slides  # noqa: E402  (scripts/slides.py: the rules the metadata follows)

pytestmark = pytest.mark.e2e

_CHOICE = os.environ.get("AIGC_E2E_SLIDES", "04_diffusion.ipynb")
NOTEBOOKS = ([p.name for p in slides.LESSONS] if _CHOICE == "all" else [n.strip() for n in _CHOICE.split(",") if n.strip()])
WIDTH, HEIGHT = 1280, 800
SHOTS = labdriver.ARTIFACTS / "slides"

# The innermost slide on screen: its box, its overflow, its first words.
CURRENT_SLIDE_JS = """() => {
  const s = [...document.querySelectorAll('.reveal .slides section.present')].pop();
  const r = s.getBoundingClientRect();
  return {hash: location.hash, top: r.top, bottom: r.bottom, left: r.left, right: r.right,
          scrollHeight: s.scrollHeight, clientHeight: s.clientHeight,
          scrollWidth: s.scrollWidth, clientWidth: s.clientWidth,
          cells: s.querySelectorAll('.jp-Cell').length, text: (s.innerText || '').trim().slice(0, 60)};
}"""

# Console errors that come from jupyterlab-rise 0.43.1 itself and change nothing on screen:
# its bundled web components (@jupyter/web-components 0.13 inside a 0.16 host) recurse on a design
# token at start-up, and it always asks for an optional per-notebook style sheet <name>.css.
KNOWN_RISE_ERRORS = ("RangeError: Maximum call stack size exceeded (http://127.0.0.1:{port}/static/rise/",
                     "Refused to apply style from 'http://127.0.0.1:{port}/files/{stem}.css'")


def _screen(hash_: str) -> str:
    """'#/slide-3-1/2' (slide 3, sub-slide 1, fragment 2) -> '#/slide-3-1'."""
    parts = hash_.split("/")
    return "/".join(parts[:2])


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_slideshow_fits_the_screen_with_no_console_errors(notebook, lab_server, chromium, e2e_report):
    page, console = chromium
    raw = json.loads((labdriver.REPO / "notebooks" / notebook).read_text())
    stem = notebook.removesuffix(".ipynb")
    count = slides.count(raw)
    foreign = []

    def listener(request):
        if not request.url.startswith(("data:", "blob:", lab_server.base)):
            foreign.append(request.url)

    page.on("request", listener)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    SHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SHOTS.glob(f"{stem[:2]}_*.png"):
        stale.unlink()
    errors_before = len(console.errors())
    try:
        start = time.monotonic()
        page.goto(lab_server.rise_url(notebook), wait_until="domcontentloaded", timeout=labdriver.OPEN_S * 1000)
        page.wait_for_selector(".reveal.ready", timeout=labdriver.OPEN_S * 1000)
        page.wait_for_timeout(1000)  # MathJax typesets after reveal is ready
        opened = time.monotonic() - start
        screens = {}
        for _ in range(count["screens"] + count["fragments"] + 2):  # two presses past the end: it must stay there
            now = page.evaluate(CURRENT_SLIDE_JS)
            key = _screen(now["hash"])
            if key not in screens:
                screens[key] = now
                page.screenshot(path=str(SHOTS / f"{stem[:2]}_{len(screens):02d}.png"))
            page.keyboard.press("Space")
            page.wait_for_timeout(120)
        stepped = time.monotonic() - start - opened
    finally:
        page.remove_listener("request", listener)
        page.set_viewport_size({"width": 1400, "height": 1000})  # the session page's size for the other tests

    e2e_report[f"rise_{stem[:2]}"] = {"screens": len(screens), "open_s": round(opened, 1), "step_through_s": round(stepped, 1)}
    print(f"\nRISE {notebook}: {len(screens)} screens; open {opened:.1f} s, stepped through in {stepped:.1f} s")
    assert len(screens) == count["screens"], f"RISE showed {len(screens)} screens, the metadata has {count['screens']}"
    assert all(s["cells"] >= 1 for s in screens.values()), "an empty slide"
    spilled = {k: (round(s["top"]), round(s["bottom"]), s["text"]) for k, s in screens.items()
               if s["top"] < -1 or s["bottom"] > HEIGHT + 1 or s["left"] < -1 or s["right"] > WIDTH + 1
               or s["scrollHeight"] > s["clientHeight"] + 1 or s["scrollWidth"] > s["clientWidth"] + 1}
    assert not spilled, f"slides outside the {WIDTH}x{HEIGHT} window (top, bottom, text): {spilled}"
    known = tuple(k.format(port=lab_server.port, stem=stem) for k in KNOWN_RISE_ERRORS)
    errors = [e for e in console.errors()[errors_before:] if not any(k in e for k in known)]
    assert errors == [], errors
    assert foreign == [], f"requests that leave the machine: {foreign}"


def test_static_slides_open_from_disk_with_mathjax_and_no_network(chromium, tmp_path, e2e_report):
    """`make slides` output, opened as a file: reveal.js and MathJax load from lib/, nothing else is asked for."""
    import build_slides

    if not (build_slides.NODE / "reveal.js").is_dir():
        if labdriver.ci_must_not_skip():
            pytest.fail("CI=true: node_modules/ is missing (`npm ci`)", pytrace=False)
        pytest.skip("node_modules/ is missing: `npm ci` (make slides / make test do it)")
    seconds = build_slides.build([labdriver.REPO / "notebooks" / "04_diffusion.ipynb"], tmp_path)
    page, console = chromium
    requested, failed = [], []
    on_request, on_failed = (lambda r: requested.append(r.url)), (lambda r: failed.append(r.url))
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    errors_before = len(console.errors())
    try:
        page.goto((tmp_path / "04_diffusion.slides.html").as_uri() + "#/3", wait_until="load")
        page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                               "&& document.querySelectorAll('.MathJax_CHTML').length > 0", timeout=60_000)
        page.screenshot(path=str(SHOTS / "static_04_section3.png"))
        formulas = page.evaluate("() => document.querySelectorAll('.MathJax_CHTML').length")
        sections = page.evaluate("() => document.querySelectorAll('.reveal .slides section').length")
    finally:
        page.remove_listener("request", on_request)
        page.remove_listener("requestfailed", on_failed)
    e2e_report["static_slides_04"] = {"build_s": round(seconds["04_diffusion"], 1), "formulas": formulas}
    assert formulas > 20 and sections > 20
    assert [u for u in requested if not u.startswith(("file:", "data:", "blob:"))] == []
    assert failed == [] and console.errors()[errors_before:] == []


def test_view_menu_renders_the_open_lesson_with_rise(lab_server, chromium):
    """The lecturer's way in: open lesson 04 in JupyterLab, View > Render with RISE: a panel shows its first slide."""
    page, console = chromium
    errors_before = len(console.errors())
    nb = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
    nb.open(lab_server.url("04_diffusion.ipynb"))
    page.locator(".lm-MenuBar-itemLabel", has_text="View").first.click()
    page.locator("li.lm-Menu-item[data-command='RISE:preview']").first.click()
    frame = page.frame_locator("iframe[src*='/rise/04_diffusion.ipynb']")
    frame.locator(".reveal.ready").wait_for(timeout=labdriver.OPEN_S * 1000)
    title = frame.locator(".reveal .slides section.present h1").first
    title.wait_for(timeout=30_000)
    assert title.inner_text().startswith("04 · Diffusion models")
    page.screenshot(path=str(SHOTS / "lab_render_with_rise.png"))
    known = tuple(k.format(port=lab_server.port, stem="04_diffusion") for k in KNOWN_RISE_ERRORS)
    assert [e for e in console.errors()[errors_before:] if not any(k in e for k in known)] == []
