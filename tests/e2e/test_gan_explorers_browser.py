"""02_gan.ipynb in a real JupyterLab + headless Chromium: Run All, then use the GAN widgets like a learner.

Order (one page, module fixture): open -> Run All -> GANExplorer on the conditional GAN (slider a1,
"new seed" button, class picker) -> ToyGANReplay (snapshot slider) -> console/dialog checks.
Screenshots and latency.json go to artifacts/e2e/.
"""
import re

import pytest

import labdriver

pytestmark = pytest.mark.e2e

NOTEBOOK = "02_gan.ipynb"
MOVES = 15
FALLBACK = "Live explorer: run this cell"


@pytest.fixture(scope="module")
def nb(lab_server, chromium, e2e_report):
    page, console = chromium
    notebook = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
    notebook.open(lab_server.url(NOTEBOOK))
    notebook.shot("gan_01_opened")
    cell = notebook.cell("explorer = GANExplorer")
    notebook.scroll_to(cell)
    notebook.opened = {"dialogs": notebook.dialogs(),
                       "explorer_outputs": cell.locator(".jp-OutputArea-output").all_text_contents()}
    return notebook


def _status(view) -> str:
    return view.locator(".widget-html").last.inner_text()


def test_opens_with_the_fallback_and_runs_all_without_errors(nb, e2e_report):
    assert nb.opened["dialogs"] == []
    shown = " ".join(nb.opened["explorer_outputs"])
    assert FALLBACK in shown and "Error displaying widget" not in shown
    seconds = nb.run_all()
    e2e_report["gan_run_all_s"] = round(seconds, 1)
    print(f"\nRun All of {NOTEBOOK}: {seconds:.1f} s")
    nb.shot("gan_02_after_run_all")
    assert nb.error_outputs() == []
    assert nb.slider("snapshot").count() == 1 and nb.slider("a1").count() == 1


def test_gan_explorer_slider_seed_and_class_redraw_the_digit(nb, e2e_report):
    page = nb.page
    view = nb.cell("explorer = GANExplorer").locator(".jupyter-widgets.widget-vbox").first
    nb.scroll_to(view)
    a1 = nb.slider("a1", view)
    digit = view.locator("img[width='196']").first
    nb.track("gan_digit", digit)
    page.wait_for_timeout(500)
    nb.shot("gan_10_explorer_before", view)
    first_src, first_png = digit.get_attribute("src"), digit.screenshot()

    moves = []
    for _ in range(MOVES):
        moves.append(nb.press(a1, "ArrowRight", "gan_digit"))
        page.wait_for_timeout(100)
    assert all(m["changed"] for m in moves), "a key press did not redraw the generated digit"
    assert labdriver.readout_value(a1) == pytest.approx(0.1 * MOVES)
    assert re.search(r"a = \(\+1\.5, \+0\.0, \+0\.0, \+0\.0\)", _status(view)), _status(view)
    assert digit.screenshot() != first_png, "the digit looks the same after moving a1 by 1.5"

    src = digit.get_attribute("src")
    view.locator("button", has_text="new seed").click()
    page.wait_for_timeout(800)  # one generator call + PNG: a few ms in the kernel
    assert digit.get_attribute("src") != src and "seed 1" in _status(view)

    src = digit.get_attribute("src")
    view.locator("button", has_text=re.compile(r"^3$")).click()
    page.wait_for_timeout(800)
    assert digit.get_attribute("src") != src and "class 3" in _status(view)
    assert digit.get_attribute("src") != first_src
    nb.shot("gan_11_explorer_after", view)
    labdriver.record_latency(e2e_report, "gan_explorer", "a1", moves, "GANExplorer key press -> new digit src")


def test_toy_replay_slider_redraws_both_panels(nb, e2e_report):
    view = nb.widget_with("snapshot")
    nb.scroll_to(view)
    slider = nb.slider("snapshot", view)
    panels = view.locator("img")
    assert panels.count() == 2, "expected the vanilla and the R1 panel"
    nb.track("toy_panel", panels.nth(0))
    before = [panels.nth(i).get_attribute("src") for i in range(2)]
    nb.shot("gan_20_replay_before", view)
    moves = [nb.press(slider, "ArrowLeft", "toy_panel") for _ in range(5)]
    assert all(m["changed"] for m in moves)
    after = [panels.nth(i).get_attribute("src") for i in range(2)]
    assert after[0] != before[0] and after[1] != before[1]
    assert re.search(r"step \d+", _status(view))
    nb.shot("gan_21_replay_after", view)
    labdriver.record_latency(e2e_report, "toy_replay", "snapshot", moves, "ToyGANReplay key press -> new frame src")


def test_no_console_errors_and_no_dialogs(nb, e2e_report):
    nb.shot("gan_99_final")
    assert nb.dialogs() == []
    assert nb.console.errors() == [], "browser console errors:\n" + "\n".join(nb.console.errors())
