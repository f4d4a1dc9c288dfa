"""The message table: every string a learner reads from the package has a Chinese translation, and none is stale.

The package writes each user-visible string in English and passes it through
``core.i18n.tr``; ``core/messages_zh.json`` maps the English text to Chinese.
These tests read the package's source (an AST scan, so no module has to run to
be checked) and the table:

* every ``tr("...")`` with a literal text has a non-empty Chinese entry with the
  same ``{fields}`` (name, format spec and conversion) as the English;
* ``tr(x)`` with a non-literal ``x`` is allowed only at the few sites listed in
  ``DYNAMIC``, each with a function that lists every value ``x`` can take (the
  exercises' titles and hints, the explorers' timing labels, the timeline's
  event names); those values are checked like literals. A new non-literal call
  fails here: write the text as a literal at the call, or add its site and its
  values to ``DYNAMIC``. (Forbidding non-literal calls outright would force the
  ~50 exercises' titles and hints into wrappers; listing them from
  ``EXERCISES`` checks exactly the same strings.)
* no entry is stale: each English key still occurs in the package, so an edited
  English string is reported by name, old translation and all;
* in Chinese mode a real check prints a Chinese verdict, a real plot has a
  Chinese title and a real explorer a Chinese status line; in English mode the
  same calls print exactly what they printed before the table existed.
"""
from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path

import matplotlib
import pytest
import torch

import aigc_course
from aigc_course.core import i18n

matplotlib.use("Agg")

PACKAGE = Path(aigc_course.__file__).parent
TERMS = Path(__file__).parents[1] / "translations" / "terms.json"


# ----------------------------------------------------------------------------- what the package passes to tr

def _tr_calls():
    """(path relative to the package, enclosing function name, call node) of every ``tr(...)`` in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = []

        def visit(node, function):
            for child in ast.iter_child_nodes(node):
                inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
                if isinstance(child, ast.Call):
                    f = child.func
                    if (isinstance(f, ast.Name) and f.id == "tr") or (isinstance(f, ast.Attribute) and f.attr == "tr"):
                        found.append((path.relative_to(PACKAGE).as_posix(), function, child))
                visit(child, inner)
        visit(tree, "<module>")
        yield from found


def _literal(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _explorer_timing_labels() -> set[str]:
    from aigc_course.views import widgets
    from aigc_course.views.widgets.base import Explorer

    classes = [c for c in vars(widgets).values() if isinstance(c, type) and issubclass(c, Explorer)]
    return {c.timing_label for c in classes}


def _exercise_titles() -> set[str]:
    from aigc_course.teaching.exercises import EXERCISES

    return {e.title for e in EXERCISES.values()}


def _exercise_hints() -> set[str]:
    from aigc_course.teaching.exercises import EXERCISES

    return {e.hint for e in EXERCISES.values()}


def _event_names() -> set[str]:
    from aigc_course.teaching.history import EVENTS

    return {e.name for e in EVENTS}


# (file, function) -> every value the non-literal tr(...) there can receive
DYNAMIC = {
    ("views/widgets/base.py", "timing_text"): _explorer_timing_labels,
    ("teaching/exercises/framework.py", "title_text"): _exercise_titles,
    ("teaching/exercises/framework.py", "hint_text"): _exercise_hints,
    ("views/plots.py", "timeline"): _event_names,
}


def _english_keys() -> dict[str, str]:
    """Every English text the package translates -> where it comes from."""
    keys = {}
    for where, function, call in _tr_calls():
        text = _literal(call)
        if text is not None:
            keys.setdefault(text, f"{where}:{call.lineno}")
    for (where, function), values in DYNAMIC.items():
        for text in values():
            keys.setdefault(text, f"{where} ({function})")
    return keys


def _fields(text: str) -> set[tuple]:
    """The {fields} of a format string: (name, format spec, conversion) of each."""
    return {(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None}


def _table() -> dict[str, str]:
    return json.loads(i18n.MESSAGES_ZH.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- (a) every string has a translation

def test_the_scan_finds_the_package_strings():
    """The scan itself works: it sees literal calls in each converted module and every dynamic site."""
    keys = _english_keys()
    for text in ("Exercise {id} {title}: correct", "Test digits in latent space", "D says fake",
                 "choose at least one style layer", "KL divergence", "decode + draw", "Boltzmann machine"):
        assert text in keys, text
    sites = {(where, function) for where, function, call in _tr_calls() if _literal(call) is None}
    assert sites == set(DYNAMIC)
    assert len(keys) > 150


def test_every_string_has_a_chinese_translation_with_the_same_fields():
    table = _table()
    events = _event_names()
    problems = []
    for text, where in sorted(_english_keys().items()):
        zh = table.get(text)
        if not zh or not zh.strip():
            problems.append(f"{where}: no Chinese for {text!r}")
        elif _fields(zh) != _fields(text):
            problems.append(f"{where}: fields differ for {text!r}: {sorted(_fields(text))} vs {sorted(_fields(zh))}")
        elif zh == text and text not in events:  # only the names of works (GAN, GPT-4) stay as they are
            problems.append(f"{where}: the Chinese is the English for {text!r}")
    assert not problems, "\n".join(problems)


def test_hint_fields_match_the_hint_text():
    """An exercise's hint_fields fill exactly the hint's {fields}, in both languages."""
    from aigc_course.teaching.exercises import EXERCISES

    for exercise in EXERCISES.values():
        if exercise.hint_fields:
            assert {name for name, *_ in _fields(exercise.hint)} == {n for n, _ in exercise.hint_fields}, exercise.id


def test_table_uses_the_term_list():
    """A term of translations/terms.json in an English key is rendered the term list's way in the Chinese."""
    terms = json.loads(TERMS.read_text(encoding="utf-8"))
    table = _table()
    problems = []
    for english, chinese in table.items():
        for term, rendering in terms.items():
            if re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", english, flags=re.IGNORECASE) \
                    and rendering not in chinese:
                problems.append(f"{english!r}: {term!r} should read {rendering!r} in {chinese!r}")
    assert not problems, "\n".join(problems)


def test_table_is_well_formed():
    raw = i18n.MESSAGES_ZH.read_text(encoding="utf-8")
    table = json.loads(raw)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in table.items())
    pairs = json.loads(raw, object_pairs_hook=lambda p: p)
    assert len(pairs) == len(table), "a key appears twice in messages_zh.json"


# ----------------------------------------------------------------------------- (b) no entry is stale

def test_no_entry_is_stale():
    used = _english_keys()
    stale = sorted(set(_table()) - set(used))
    assert not stale, "entries whose English no longer occurs in the package (update or delete them):\n" + \
        "\n".join(repr(s) for s in stale)


# ----------------------------------------------------------------------------- (c) non-literal calls

def test_non_literal_tr_calls_only_where_their_values_are_listed():
    unknown = [f"{where}:{call.lineno} in {function}()" for where, function, call in _tr_calls()
               if _literal(call) is None and (where, function) not in DYNAMIC]
    assert not unknown, ("tr() with a non-literal text: use a literal, or list the values it can take in "
                         "DYNAMIC (tests/test_i18n.py):\n" + "\n".join(unknown))


def test_the_scan_catches_a_missing_and_a_stale_entry(monkeypatch):
    """The checks above can fail: a string without an entry and an entry without a string are both named."""
    table = dict(_table())
    table.pop("KL divergence")
    table["An English text nobody uses any more"] = "没人再用的英文"
    monkeypatch.setitem(globals(), "_table", lambda: table)
    with pytest.raises(AssertionError, match="no Chinese for 'KL divergence'"):
        test_every_string_has_a_chinese_translation_with_the_same_fields()
    with pytest.raises(AssertionError, match="An English text nobody uses any more"):
        test_no_entry_is_stale()


# ----------------------------------------------------------------------------- (d) behaviour in both languages

@pytest.fixture
def zh():
    """Chinese messages for one test; English (and the figure fonts) come back afterwards."""
    with matplotlib.rc_context():
        i18n.set_language("zh")
        try:
            yield
        finally:
            i18n.set_language("en")


def _kl(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)


def test_exercise_verdicts_in_chinese(zh, capsys):
    from aigc_course.teaching.exercises import check_kl, check_reparameterize

    check_kl(_kl)
    assert capsys.readouterr().out == "练习 1.2 KL 散度：正确\n"
    check_kl(lambda mu, logvar: _kl(mu, logvar) * 2)
    out = capsys.readouterr().out
    assert out.startswith("练习 1.2 KL 散度：尚未完成 - ") and "每个样本" in out, out

    def not_done(mu, logvar, eps):
        raise NotImplementedError
    check_reparameterize(not_done)
    assert capsys.readouterr().out == "练习 1.1 重参数化：尚未完成 - 练习还没有完成（请替换 `raise NotImplementedError`）\n"


def test_exercise_verdicts_in_english_are_unchanged(capsys):
    from aigc_course.teaching.exercises import check_kl

    assert i18n.language() == "en"
    check_kl(_kl)
    assert capsys.readouterr().out == "Exercise 1.2 KL divergence: correct\n"
    check_kl(lambda mu, logvar: _kl(mu, logvar) * 2)
    assert capsys.readouterr().out == ("Exercise 1.2 KL divergence: not yet - KL = 0.5 * sum over latent dims of "
                                       "(mu^2 + exp(logvar) - 1 - logvar), one value per example\n")


def test_a_hint_with_fields_is_filled_in_both_languages(capsys):
    """Exercise 1.3's hint carries its step count and threshold as fields: the numbers appear in either language."""
    from aigc_course.teaching.exercises import EXERCISES

    exercise = EXERCISES["1.3"]
    assert exercise.hint_text().startswith("after 150 steps the held-out negative ELBO must fall below 215 nats")
    i18n.set_language("zh")
    try:
        assert exercise.hint_text().startswith("训练 150 步后，留出集上的负 ELBO 必须低于 215 奈特"), exercise.hint_text()
    finally:
        i18n.set_language("en")


def test_plot_titles_and_labels_in_chinese(zh):
    import numpy as np

    from aigc_course.teaching.history import EVENTS
    from aigc_course.views import plots

    ax = plots.latent_scatter(torch.randn(40, 2), np.arange(40) % 10)
    assert ax.get_title() == "潜空间中的测试数字" and ax.get_legend().get_title().get_text() == "数字"
    ax = plots.loss_curves({"train": [3, 2, 1]})
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("轮次", "每张图像的奈特数", "训练")
    ax = plots.timeline(EVENTS)
    assert ax.get_title() == "生成式人工智能简史（等间距排列，不按时间比例）"
    assert "玻尔兹曼机\n1985" in [t.get_text() for t in ax.texts]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["早期", "VAE", "GAN", "风格", "自回归", "扩散"]
    matplotlib.pyplot.close("all")


def test_plot_titles_in_english_are_unchanged():
    import numpy as np

    from aigc_course.views import plots

    ax = plots.latent_scatter(torch.randn(40, 2), np.arange(40) % 10)
    assert ax.get_title() == "Test digits in latent space" and ax.get_legend().get_title().get_text() == "digit"
    ax = plots.loss_curves({"train": [3, 2, 1]}, title="mine")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("epoch", "nats per image", "mine")
    matplotlib.pyplot.close("all")


def test_explorer_labels_and_status_in_chinese(zh):
    pytest.importorskip("ipywidgets")
    from aigc_course.models.vae import VAE, VAEConfig
    from aigc_course.views.widgets import InterpolationExplorer, error_html

    explorer = InterpolationExplorer(VAE(VAEConfig(hidden=16)), torch.zeros(1, 28, 28), torch.ones(1, 28, 28))
    assert explorer.status.value.startswith("t = 0.50 &nbsp; 解码 + 绘制: ")
    headings = [box.children[0].value for box in explorer.widget.children[0].children]
    assert headings == ["起点", "解码后的 z(t)", "终点"]
    assert "此视图未更新" in error_html(RuntimeError("x"))


def test_unknown_text_falls_back_to_english(zh):
    assert i18n.tr("a text that is not in the table: {n}", n=3) == "a text that is not in the table: 3"
