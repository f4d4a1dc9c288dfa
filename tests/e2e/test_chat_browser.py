"""09_assistant.ipynb in a real JupyterLab + headless Chromium: Run All, then chat with the assistant.

open -> Run All -> Send a message: a reply arrives -> the same message greedy twice gives the same reply ->
raise the temperature: the replies change -> tick retrieval: the lessons' line is shown and used ->
console/dialog checks. Screenshots and latency.json
(key "chat_explorer") go to artifacts/e2e/.
"""
import statistics
import time

import pytest

import labdriver

pytestmark = pytest.mark.e2e

NOTEBOOK = "09_assistant.ipynb"


@pytest.fixture(scope="module")
def chat(lab_server, chromium):
    page, console = chromium
    nb = labdriver.Notebook(page, labdriver.Console(page))  # this module's console messages only
    nb.open(lab_server.url(NOTEBOOK))
    nb.shot("09_opened")
    return nb


def _send(nb, view, message: str | None = None) -> tuple[str, float]:
    """Type ``message`` (if given), press Send, wait for one more reply; return (its text, milliseconds)."""
    if message is not None:
        box = view.locator(".widget-text input").first
        box.fill(message)
        box.dispatch_event("change")
        nb.page.wait_for_timeout(300)  # the text widget syncs its value to the kernel
    before = view.locator(".chat-reply").count()
    started = time.perf_counter()
    view.locator("button", has_text="Send").first.click()
    nb.page.wait_for_function("([view, n]) => view.querySelectorAll('.chat-reply').length > n",
                              arg=[view.element_handle(), before], timeout=labdriver.MOVE_S * 1000)
    ms = (time.perf_counter() - started) * 1000
    return view.locator(".chat-reply .chat-text").last.inner_text().strip(), ms


def _set_slider(nb, slider, key: str, presses: int) -> None:
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(presses):
        nb.page.keyboard.press(key)
        nb.page.wait_for_timeout(80)
    nb.page.wait_for_timeout(400)


def test_run_all_finishes_without_errors(chat, e2e_report):
    seconds = chat.run_all()
    e2e_report["chat_run_all_s"] = round(seconds, 1)
    print(f"\nRun All of {NOTEBOOK}: {seconds:.1f} s")
    assert chat.error_outputs() == []
    assert chat.dialogs() == []
    for label in ("temperature", "top-k", "top-p"):
        assert chat.slider(label).count() == 1, f"no live slider {label!r} after Run All"


def test_replies_arrive_and_change_with_the_settings(chat, e2e_report):
    view = chat.widget_with("temperature")
    chat.scroll_to(view)
    latencies = []
    greedy, ms = _send(chat, view, "What is 23 plus 45?")
    latencies.append(ms)
    assert greedy, "the greedy reply is empty"
    again, ms = _send(chat, view)
    latencies.append(ms)
    assert again == greedy, "greedy decoding (temperature 0) must give the same reply twice"
    assert "greedy" in view.locator(".chat-reply small").last.inner_text()
    _set_slider(chat, chat.slider("temperature", view), "ArrowRight", 20)     # 0.0 -> 2.0
    assert labdriver.readout_value(chat.slider("temperature", view)) == pytest.approx(2.0)
    sampled = []
    for seed in range(4):  # a new seed for each reply, so the samples differ from each other too
        seed_box = view.locator(".widget-inline-hbox input[type='number']").first
        seed_box.fill(str(seed + 1))
        seed_box.press("Enter")
        chat.page.wait_for_timeout(200)
        text, ms = _send(chat, view)
        sampled.append(text)
        latencies.append(ms)
    assert "T = 2.0" in view.locator(".chat-reply small").last.inner_text()
    assert any(s != greedy for s in sampled), f"temperature 2 changed no reply: {sampled} vs {greedy!r}"
    assert len(set(sampled)) > 1, f"four seeds at temperature 2 gave one reply: {sampled}"
    chat.shot("09_chat_explorer", view)
    e2e_report["chat_explorer"] = {"replies": len(latencies),
                                   "send_to_reply_ms": {"median": round(statistics.median(latencies), 1),
                                                        "max": round(max(latencies), 1)}}
    print(f"\nChatExplorer Send -> reply: median {statistics.median(latencies):.0f} ms (n={len(latencies)})")


def test_retrieval_switch_puts_the_lessons_line_above_a_reply_that_uses_it(chat):
    """Tick "look it up in the lessons": the retrieved glossary row is shown, and the greedy reply copies the
    answer from it (the term is in no training text, so without the row the model cannot know it)."""
    view = chat.widget_with("temperature")
    chat.scroll_to(view)
    _set_slider(chat, chat.slider("temperature", view), "ArrowLeft", 20)      # back to 0: greedy
    without, _ = _send(chat, view, "“自编码器”的英文是什么？")
    view.locator(".widget-checkbox input[type='checkbox']").first.check()
    chat.page.wait_for_timeout(300)  # the checkbox syncs its value to the kernel
    with_row, _ = _send(chat, view)
    assert "| autoencoder | 自编码器 |" in view.locator(".chat-context").last.inner_text()
    assert with_row == "autoencoder" != without, (with_row, without)
    chat.shot("09_chat_retrieval", view)


def test_no_console_errors(chat):
    assert chat.dialogs() == []
    assert chat.console.errors() == [], "\n".join(chat.console.errors())
