"""05_gpt2.ipynb in a real JupyterLab + headless Chromium: Run All, then use the sampling explorer.

open -> Run All -> temperature / top-k sliders redraw the next-token chart -> Step appends a token ->
console/dialog checks. Screenshots and latency.json (key "sampling_explorer") go to artifacts/e2e/.
"""
import statistics
import time

import pytest

import labdriver

pytestmark = pytest.mark.e2e

NOTEBOOK = "05_gpt2.ipynb"
MOVES = 10


@pytest.fixture(scope="module")
def gpt(lab_server, chromium):
    page, console = chromium
    nb = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
    nb.open(lab_server.url(NOTEBOOK))
    nb.shot("05_opened")
    return nb


def _chart_changes(nb, view, slider, key: str) -> float:
    """Press ``key`` on ``slider`` once; wait until the chart's HTML changes; return the milliseconds it took."""
    before = view.locator(".next-token-chart").first.inner_html()
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    started = time.perf_counter()
    nb.page.keyboard.press(key)
    # the HTML widget replaces its content, so look the chart up afresh on every poll
    nb.page.wait_for_function("([view, old]) => view.querySelector('.next-token-chart').innerHTML !== old",
                              arg=[view.element_handle(), before], polling="raf", timeout=labdriver.MOVE_S * 1000)
    return (time.perf_counter() - started) * 1000


def test_run_all_finishes_without_errors(gpt, e2e_report):
    seconds = gpt.run_all()
    e2e_report["gpt_run_all_s"] = round(seconds, 1)
    print(f"\nRun All of {NOTEBOOK}: {seconds:.1f} s")
    assert gpt.error_outputs() == []
    assert gpt.dialogs() == []
    for label in ("temperature", "top-k", "top-p"):
        assert gpt.slider(label).count() == 1, f"no live slider {label!r} after Run All"


def test_sliders_redraw_the_next_token_chart(gpt, e2e_report):
    view = gpt.widget_with("temperature")
    gpt.scroll_to(view)
    gpt.page.wait_for_timeout(500)
    gpt.shot("05_explorer_before", view)
    chart = view.locator(".next-token-chart").first
    first = chart.inner_text()
    temperature, top_k = gpt.slider("temperature", view), gpt.slider("top-k", view)
    latencies = [_chart_changes(gpt, view, temperature, "ArrowRight") for _ in range(MOVES)]
    assert labdriver.readout_value(temperature) == pytest.approx(1.0 + 0.05 * MOVES)
    assert chart.inner_text() != first, "the probabilities did not change with the temperature"
    for _ in range(3):  # top-k from "off" (0) to 3: at most three candidates remain
        latencies.append(_chart_changes(gpt, view, top_k, "ArrowRight"))
    gpt.page.wait_for_timeout(300)
    assert "3 candidate(s) left" in chart.inner_text()
    assert chart.locator("tr").count() == 3
    gpt.shot("05_explorer_top_k", view)
    e2e_report["sampling_explorer"] = {"moves": len(latencies),
                                       "press_to_chart_ms": {"median": round(statistics.median(latencies), 1),
                                                             "max": round(max(latencies), 1)}}
    print(f"\nSamplingExplorer key press -> new chart: median {statistics.median(latencies):.0f} ms "
          f"(n={len(latencies)})")


def test_step_appends_a_sampled_token(gpt):
    view = gpt.widget_with("temperature")
    before = view.locator("pre b").first.inner_text()
    view.locator("button", has_text="Step").first.click()
    gpt.page.wait_for_function("([view, old]) => view.querySelector('pre b').textContent !== old",
                               arg=[view.element_handle(), before], timeout=labdriver.MOVE_S * 1000)
    assert len(view.locator("pre b").first.inner_text()) > len(before)
    gpt.shot("05_explorer_after_step", view)


def test_no_console_errors(gpt):
    assert gpt.dialogs() == []
    assert gpt.console.errors() == [], "\n".join(gpt.console.errors())
