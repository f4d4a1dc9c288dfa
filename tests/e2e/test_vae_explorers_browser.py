"""01_vae.ipynb in a real JupyterLab + headless Chromium: Run All, then use every explorer like a learner.

The tests run in file order on one page (the module fixture opens the notebook once):
open -> Run All -> LatentExplorer (z1, z2) -> InterpolationExplorer (t) -> console/dialog checks.
Screenshots, the server log and latency.json go to artifacts/e2e/.
"""
import os
import platform
import re
import statistics
import subprocess

import pytest

import labdriver

pytestmark = pytest.mark.e2e

NOTEBOOK = "01_vae.ipynb"
MOVES = 20  # key presses per slider for the latency medians
FALLBACK = "Live explorer: run this cell"


@pytest.fixture(scope="module")
def vae(lab_server, chromium, e2e_report):
    """01_vae open in a fresh workspace; `opened` holds what it looked like before anything ran."""
    page, console = chromium
    nb = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
    nb.open(lab_server.url(NOTEBOOK))
    nb.shot("01_opened")
    nb.opened = {"dialogs": nb.dialogs(), "toasts": nb.toasts()}
    cell = nb.cell("explorer = LatentExplorer")
    nb.scroll_to(cell)
    nb.opened["explorer_outputs"] = cell.locator(".jp-OutputArea-output").all_text_contents()
    nb.shot("02_explorer_before_running")
    e2e_report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "chromium": _chromium_version()}
    return nb


def _chromium_version() -> str:
    try:
        return subprocess.run([labdriver.chromium_path(), "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _z_from_status(text: str) -> tuple[float, float]:
    match = re.search(r"z = \(([+-]\d+\.\d+), ([+-]\d+\.\d+)\)", text)
    assert match, f"status line does not show z: {text!r}"
    return float(match[1]), float(match[2])


def _status_shows_js(status_selector_tag: str, z1: str, z2: str) -> str:
    return (f"() => {{ const s = document.querySelector('[data-e2e-status={status_selector_tag}]');"
            f" return !!s && s.textContent.includes('z = ({z1}, {z2})'); }}")


def test_notebook_opens_without_dialogs_and_shows_the_fallback(vae):
    assert vae.opened["dialogs"] == [], f"a dialog blocks the notebook: {vae.opened['dialogs']}"
    assert not [t for t in vae.opened["toasts"] if "news" in t.lower()], f"news prompt shown: {vae.opened['toasts']}"
    # Before any cell ran, the saved widget output shows its friendly text/plain fallback, not an error.
    shown = " ".join(vae.opened["explorer_outputs"])
    assert "Error displaying widget" not in shown
    assert FALLBACK in shown, f"explorer cell before running shows {shown[:300]!r}"


def test_run_all_finishes_without_errors(vae, e2e_report):
    seconds = vae.run_all()
    e2e_report["run_all_s"] = round(seconds, 1)
    print(f"\nRun All of {NOTEBOOK}: {seconds:.1f} s")
    vae.shot("03_after_run_all")
    assert vae.error_outputs() == []
    assert vae.dialogs() == [], f"a dialog appeared during Run All: {vae.dialogs()}"
    for label in ("z₁", "z₂", "t"):
        assert vae.slider(label).count() == 1, f"no live slider {label!r} after Run All"


def test_latent_explorer_sliders_redraw_digit_and_status(vae, e2e_report):
    page = vae.page
    view = vae.widget_with("z₁")
    vae.scroll_to(view)
    z1, z2 = vae.slider("z₁", view), vae.slider("z₂", view)
    digit = view.locator("img[width='196']").first
    latent_map = view.locator("img[width='256']").first
    status = view.locator(".widget-html").last
    status.evaluate("e => e.dataset.e2eStatus = 'latent'")
    vae.track("digit", digit)
    page.wait_for_timeout(500)
    vae.shot("10_latent_before", view)
    digit_png, map_src, digit_src = digit.screenshot(), latent_map.get_attribute("src"), digit.get_attribute("src")
    start = (labdriver.readout_value(z1), labdriver.readout_value(z2))

    results = {}
    for name, slider, key in (("z1", z1, "ArrowRight"), ("z2", z2, "ArrowUp")):
        moves = []
        for _ in range(MOVES):
            moves.append(vae.press(slider, key, "digit"))
            want = f"{labdriver.readout_value(z1):+.2f}", f"{labdriver.readout_value(z2):+.2f}"
            # the status line follows the slider: "z = (+0.05, +0.00)  decode + draw: 3.1 ms"
            page.wait_for_function(_status_shows_js("latent", *want), timeout=labdriver.MOVE_S * 1000)
            page.wait_for_timeout(100)  # a learner's pause between key presses
        assert all(m["changed"] for m in moves), "a key press did not give the digit image a new src"
        results[name] = labdriver.summarise(moves)

    end = (labdriver.readout_value(z1), labdriver.readout_value(z2))
    assert end == pytest.approx((min(start[0] + 1.0, 3.0), min(start[1] + 1.0, 3.0))), (start, end)
    assert _z_from_status(status.inner_text()) == pytest.approx(end)
    assert latent_map.get_attribute("src") != map_src, "the cross-hair on the latent map did not move"
    assert digit.get_attribute("src") != digit_src
    assert digit.screenshot() != digit_png, "the decoded digit looks the same after moving z by (1, 1)"
    vae.shot("11_latent_after", view)

    both = results["z1"]["all_press_to_src_ms"] + results["z2"]["all_press_to_src_ms"]
    e2e_report["latent_explorer"] = {"z1": results["z1"], "z2": results["z2"],
                                     "press_to_src_median_ms": round(statistics.median(both), 1)}
    print(f"\nLatentExplorer key press -> new digit src: median z1 {results['z1']['press_to_src_ms']['median']} ms, "
          f"z2 {results['z2']['press_to_src_ms']['median']} ms (n={MOVES} each)")


def test_interpolation_slider_redraws_the_middle_image(vae, e2e_report):
    view = vae.widget_with("t")
    vae.scroll_to(view)
    t = vae.slider("t", view)
    images = view.locator("img")
    assert images.count() == 3, "expected start, decoded z(t) and end images"
    start_img, middle, end_img = images.nth(0), images.nth(1), images.nth(2)
    vae.track("middle", middle)
    vae.page.wait_for_timeout(500)
    vae.shot("20_interpolation_before", view)
    before = {"start": start_img.get_attribute("src"), "middle": middle.get_attribute("src"),
              "end": end_img.get_attribute("src")}
    middle_png, t0 = middle.screenshot(), labdriver.readout_value(t)

    moves = []
    for _ in range(MOVES):
        moves.append(vae.press(t, "ArrowLeft", "middle"))
        vae.page.wait_for_timeout(100)
    assert all(m["changed"] for m in moves), "a key press did not give the middle image a new src"
    assert labdriver.readout_value(t) == pytest.approx(max(t0 - 0.02 * MOVES, 0.0))
    assert middle.get_attribute("src") != before["middle"]
    assert middle.screenshot() != middle_png, "the decoded z(t) looks the same after moving t"
    assert start_img.get_attribute("src") == before["start"] and end_img.get_attribute("src") == before["end"], \
        "the fixed start/end images should not be redrawn"
    vae.shot("21_interpolation_after", view)

    labdriver.record_latency(e2e_report, "interpolation_explorer", "t", moves,
                             "InterpolationExplorer key press -> new middle src")


def test_no_console_errors_and_no_dialogs(vae, e2e_report):
    vae.shot("99_final")
    e2e_report["console"] = {"messages": len(vae.console.messages), "errors": vae.console.errors()}
    assert vae.dialogs() == [], f"a dialog blocks the notebook: {vae.dialogs()}"
    assert not [t for t in vae.toasts() if "news" in t.lower()], f"news prompt shown: {vae.toasts()}"
    assert vae.console.errors() == [], "browser console errors (widget manager / JupyterLab):\n" + \
        "\n".join(vae.console.errors())
