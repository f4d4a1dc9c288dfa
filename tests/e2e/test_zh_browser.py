"""The Chinese edition in the Chinese JupyterLab (what `make lab-zh` opens), like a learner who reads only Chinese.

One JupyterLab with the 简体中文 interface serves the notebooks; a fresh Chromium opens
zh/01_vae.ipynb, runs it from the Chinese 运行 menu, moves the latent explorer and checks
that 汉字 are drawn with a CJK font (asked of Chromium itself, not guessed from a screenshot)
and that the console stays clean. Screenshots go to artifacts/e2e/zh_*.png.
"""
import time

import pytest

import labdriver

pytestmark = pytest.mark.e2e

NOTEBOOK = "zh/01_vae.ipynb"


@pytest.fixture(scope="module")
def zh(chromium, tmp_path_factory):
    """A second JupyterLab, in Chinese, driven by the session's Chromium (which finds the CJK font)."""
    workdir = tmp_path_factory.mktemp("jupyterlab-zh")
    log = labdriver.ARTIFACTS / "jupyter-zh.log"
    log.unlink(missing_ok=True)
    page, _ = chromium
    with labdriver.JupyterLab(labdriver.REPO / "notebooks", workdir, log_path=log, locale="zh_CN") as lab:
        nb = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
        nb.open(lab.url(NOTEBOOK))
        nb.shot("zh_01_opened")
        yield nb


def _menu_labels(nb) -> list[str]:
    return [t.strip() for t in nb.page.locator(".lm-MenuBar-itemLabel").all_inner_texts()]


def _fonts_used(nb, selector: str) -> dict[str, int]:
    """Chromium's own answer: which installed fonts drew the glyphs of the first element matching selector."""
    cdp = nb.page.context.new_cdp_session(nb.page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"nothing matches {selector!r}"
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"]: f["glyphCount"] for f in fonts}


def test_the_interface_is_chinese(zh):
    labels = _menu_labels(zh)
    assert "文件" in labels and "运行" in labels, f"menu bar is not Chinese: {labels}"


def test_run_all_from_the_chinese_menu(zh, e2e_report):
    zh.page.locator(".lm-MenuBar-itemLabel", has_text="运行").first.click()
    zh.page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").first.click()
    seconds = _wait_all_ran(zh)
    e2e_report["zh_run_all_s"] = round(seconds, 1)
    print(f"\nRun All of {NOTEBOOK} (Chinese interface): {seconds:.1f} s")
    zh.shot("zh_02_after_run_all")
    assert zh.error_outputs() == []
    assert zh.dialogs() == [], zh.dialogs()


def _wait_all_ran(nb) -> float:
    """Notebook.run_all's wait, without its English menu click."""
    start, calm = time.monotonic(), 0
    while calm < 2:
        state = nb.page.evaluate(labdriver.NOTEBOOK_STATE_JS)
        done = state["cells"] and state["done"] == state["cells"] and not state["busy"]
        calm = calm + 1 if done and state["kernel"] == "idle" else 0
        if time.monotonic() - start > labdriver.RUN_ALL_S:
            raise TimeoutError(f"Run All did not finish: {state}")
        nb.page.wait_for_timeout(500)
    return time.monotonic() - start


def test_chinese_text_is_drawn_with_a_cjk_font(zh):
    zh.scroll_to(zh.page.locator(".jp-Notebook .jp-Cell").first)  # after Run All the view is at the bottom
    heading = zh.page.locator(".jp-RenderedMarkdown h1").first
    heading.wait_for(timeout=30_000)
    text = heading.inner_text()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), f"the lesson title is not Chinese: {text!r}"
    fonts = _fonts_used(zh, ".jp-RenderedMarkdown h1")
    assert any("CJK" in name for name in fonts), f"汉字 drawn without a CJK font (empty boxes): {fonts}"


def test_the_latent_explorer_moves(zh):
    view = zh.widget_with("z₁")
    zh.scroll_to(view)
    z1 = zh.slider("z₁", view)
    digit = view.locator("img[width='196']").first
    zh.track("digit_zh", digit)
    zh.page.wait_for_timeout(500)
    before = digit.get_attribute("src")
    moves = [zh.press(z1, "ArrowRight", "digit_zh") for _ in range(5)]
    assert all(m["changed"] for m in moves)
    assert digit.get_attribute("src") != before
    zh.shot("zh_10_latent_explorer", view)


def test_no_console_errors(zh):
    zh.shot("zh_99_final")
    assert zh.console.errors() == [], "\n".join(zh.console.errors())
