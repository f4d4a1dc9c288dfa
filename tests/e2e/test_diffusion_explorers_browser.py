"""04_diffusion.ipynb in a real JupyterLab + headless Chromium: Run All, then use both explorers like a learner.

The tests run in file order on one page: open -> Run All -> TimestepScrubber (step slider, digit picker)
-> GuidanceExplorer (w slider, class buttons) -> console/dialog checks. Screenshots and latency.json go to
artifacts/e2e/.
"""
import os
import platform
import re

import pytest

import labdriver

pytestmark = pytest.mark.e2e

NOTEBOOK = "04_diffusion.ipynb"
STEP_MOVES = 10
GUIDANCE_MOVES = 4


@pytest.fixture(scope="module")
def lesson(lab_server, chromium, e2e_report):
    page, console = chromium
    nb = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
    nb.open(lab_server.url(NOTEBOOK))
    nb.shot("40_opened")
    nb.opened = {"dialogs": nb.dialogs()}
    e2e_report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    return nb


def test_run_all_finishes_without_errors(lesson, e2e_report):
    assert lesson.opened["dialogs"] == []
    seconds = lesson.run_all()
    e2e_report["diffusion_run_all_s"] = round(seconds, 1)
    print(f"\nRun All of {NOTEBOOK}: {seconds:.1f} s")
    assert lesson.error_outputs() == []
    for label in ("step", "guidance w"):
        assert lesson.slider(label).count() == 1, f"no live slider {label!r} after Run All"


def test_timestep_scrubber_redraws_x_t_and_x0(lesson, e2e_report):
    page = lesson.page
    view = lesson.widget_with("step")
    lesson.scroll_to(view)
    step = lesson.slider("step", view)
    images = view.locator("img")
    assert images.count() == 2, "expected the x_t and the predicted x_0 images"
    x_t, x0 = images.nth(0), images.nth(1)
    lesson.track("xt", x_t)
    page.wait_for_timeout(500)
    lesson.shot("41_scrubber_before", view)
    before = (x_t.get_attribute("src"), x0.get_attribute("src"))
    moves = [lesson.press(step, "ArrowRight", "xt") for _ in range(STEP_MOVES)]
    assert all(m["changed"] for m in moves), "a key press did not redraw x_t"
    assert labdriver.readout_value(step) == STEP_MOVES
    status = view.locator(".widget-html").last.inner_text()
    assert re.search(rf"step {STEP_MOVES} of 50 \(t = 780 of 1000\)", status), status
    assert x_t.get_attribute("src") != before[0] and x0.get_attribute("src") != before[1]
    lesson.shot("42_scrubber_after", view)
    labdriver.record_latency(e2e_report, "timestep_scrubber", "step", moves, "TimestepScrubber key press -> new x_t")


def test_guidance_explorer_resamples_for_w_and_class(lesson, e2e_report):
    page = lesson.page
    view = lesson.widget_with("guidance w")
    lesson.scroll_to(view)
    w = lesson.slider("guidance w", view)
    grid = view.locator("img").first
    lesson.track("grid", grid)
    page.wait_for_timeout(500)
    lesson.shot("43_guidance_before", view)
    first = grid.get_attribute("src")
    moves = [lesson.press(w, "ArrowRight", "grid", timeout=60) for _ in range(GUIDANCE_MOVES)]
    assert all(m["changed"] for m in moves), "a key press on w did not redraw the samples"
    assert labdriver.readout_value(w) == pytest.approx(0.5 * GUIDANCE_MOVES)
    # a press can land while the previous w is still sampling: wait until the last value has been drawn
    want = f"w = {0.5 * GUIDANCE_MOVES:.1f}:"
    page.wait_for_function("want => [...document.querySelectorAll('.widget-html')].some("
                           "e => e.textContent.includes(want))", arg=want, timeout=60_000)
    assert want in view.locator(".widget-html").last.inner_text()
    lesson.shot("44_guidance_after_w", view)
    after_w = grid.get_attribute("src")
    assert after_w != first
    page.evaluate("() => { window.__e2e.events = []; }")
    view.locator("button", has_text=re.compile(r"^3$")).first.click()
    page.wait_for_function("() => window.__e2e.events.some(e => e.tag === 'grid' && e.kind === 'load')",
                           timeout=60_000)
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html')].some("
                           "e => e.textContent.includes('read as a 3'))", timeout=60_000)
    assert grid.get_attribute("src") != after_w
    lesson.shot("45_guidance_class_3", view)
    labdriver.record_latency(e2e_report, "guidance_explorer", "w", moves, "GuidanceExplorer key press -> new samples")


def test_no_console_errors_and_no_dialogs(lesson, e2e_report):
    lesson.shot("49_final")
    e2e_report["console"] = {"messages": len(lesson.console.messages), "errors": lesson.console.errors()}
    assert lesson.dialogs() == []
    assert lesson.console.errors() == [], "\n".join(lesson.console.errors())
