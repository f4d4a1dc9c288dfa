"""The Chinese edition: generated from the English lessons plus translation files, never drifting.

The checker's rules are tested on small hand-made cells (so each rule is seen
to bite), then the real lessons are held to them: every prose cell translated,
no translation stale, the committed Chinese notebooks exactly what a build
writes, and Chinese figure text drawn with real glyphs.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
from pathlib import Path

import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from aigc_course.core import i18n  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("zh_edition", ROOT / "scripts" / "zh_edition.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zh = _load_script()
TERMS = {"KL divergence": "KL 散度", "encoder": "编码器"}


def _code(source):
    return nbformat.v4.new_code_cell(source)


def _md(source):
    return nbformat.v4.new_markdown_cell(source)


# --- which cells need a translation ---------------------------------------------------------------

@pytest.mark.parametrize("cell, expected", [
    (_md("# Title"), True),
    (_code("x = load('vae_conv16')\nprint(x)"), False),                    # identifiers and data strings only
    (_code("x = 1  # the first digit"), True),                              # a comment
    (_code('plt.title("The first 32 training digits")'), True),             # a sentence in a string
    (_code("### BEGIN SOLUTION\nreturn 1\n### END SOLUTION"), False),       # directives are not prose
    (_code("# NBVAL_CHECK_OUTPUT\nprint(1)"), False),
    (_code("%matplotlib inline\nx = 2"), False),                            # IPython syntax is tolerated
])
def test_needs_translation(cell, expected):
    assert zh.needs_translation(cell) is expected


# --- faithfulness: what a translation may and may not change ------------------------------------

def test_code_translation_may_change_comments_and_sentences_only():
    en = 'x = model(3)  # three samples\nax.set_title("Samples after training")'
    good = 'x = model(3)  # 三个样本\nax.set_title("训练后的样本")'
    assert zh.faithfulness(en, good, "code", TERMS) == []
    for bad in ('x = model(4)  # 三个样本\nax.set_title("训练后的样本")',          # a number changed
                'y = model(3)  # 三个样本\nax.set_title("训练后的样本")',          # an identifier changed
                'x = model(3)  # 三个样本\nax.set_xlabel("训练后的样本")',        # a call changed
                'x = model(3)  # 三个样本\nax.set_title(f"训练后的样本")'):      # a string became an f-string
        assert zh.faithfulness(en, bad, "code", TERMS), bad


def test_fields_and_numbers_in_translated_strings_stay():
    en = 'print(f"{name}: from a 1 (t = 0) to a 7 (t = {t:.1f})")'
    assert zh.faithfulness(en, 'print(f"{name}：从 1（t = 0）变到 7（t = {t:.1f}）")', "code", TERMS) == []
    for bad in ('print(f"{model}：从 1（t = 0）变到 7（t = {t:.1f}）")',               # another field
                'print(f"{name}：从 1（t = 0）变到 8（t = {t:.1f}）")'):               # another number
        assert zh.faithfulness(en, bad, "code", TERMS), bad


def test_a_directive_comment_must_stay_english():
    en = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    bad = "def f():\n    ### 开始 答案\n    return 1\n    ### END SOLUTION"
    assert zh.faithfulness(en, bad, "code", TERMS)
    assert zh.faithfulness(en, en, "code", TERMS) == []


@pytest.mark.parametrize("chinese, problem", [
    ("用 8,000 个数字训练 $p(x)$，见[论文](https://arxiv.org/abs/1312.6114)。", None),
    ("用 8000 个数字训练 $p(x)$，见[论文](https://arxiv.org/abs/1312.6114)。", "numbers"),
    ("用 8,000 个数字训练 $p(z)$，见[论文](https://arxiv.org/abs/1312.6114)。", "maths"),
    ("用 8,000 个数字训练 $p(x)$，见[论文](https://example.org)。", "links"),
])
def test_markdown_keeps_maths_numbers_and_links(chinese, problem):
    english = "Train $p(x)$ on 8,000 digits, see [the paper](https://arxiv.org/abs/1312.6114)."
    found = zh.faithfulness(english, chinese, "markdown", TERMS)
    assert (found == []) if problem is None else any(problem in p for p in found), found


def test_terms_are_rendered_one_way_unless_waived():
    english = "The KL divergence pulls each encoder's output towards the prior."
    assert zh.faithfulness(english, "KL 散度把编码器的输出拉向先验。", "markdown", TERMS) == []
    found = zh.faithfulness(english, "KL 距离把编码器的输出拉向先验。", "markdown", TERMS)
    assert any("KL divergence" in p for p in found)
    assert zh.faithfulness(english, "KL 距离把编码器的输出拉向先验。", "markdown", TERMS,
                           waived=["KL divergence"]) == []
    # "autoencoder" contains "encoder" but is another term: no demand for 编码器 on its own
    assert zh.faithfulness("An autoencoder.", "一个自编码器。", "markdown", TERMS) == []


# --- shown words are prose; identifiers and lookup keys stay code ----------------------------------

@pytest.mark.parametrize("source, expected", [
    ('ax.set_xlabel("step")', True),                                       # an axis label, one word
    ('axes[1].set(xlabel="epoch", ylabel="share", ylim=(0, 1))', True),     # keywords that name shown text
    ('ax.plot(x, y, label="generated")', True),                             # a legend entry
    ('plt.title("loss")', True),
    ('ax.text(0.5, 0.9, "real", transform=ax.transAxes)', True),            # any positional argument of text()
    ('print("generators:", names)', True),
    ('ax.set_title("vae_conv16")', False),                                  # an identifier, even when shown
    ('print(scores["fid"])', False),                                        # a lookup key inside the call
    ('print(", ".join(names))', False),                                     # a separator, not a word
    ('ax.plot(x, y, "s-", c="tab:orange")', False),                         # options of a plotting call
    ('model = load("step", kind="epoch")', False),                          # not a display call
    ('ax.set_title(f"{name:>12}")', False),                                 # fields only
    ("print(f\"{'total':>40}: {n}\")", False),                              # text inside a field cannot change
    ('ax.legend(loc="upper center")', False),                               # an option, though it reads like words
    ('ax.annotate("", xy, textcoords="offset points")', False),
])
def test_single_shown_words_need_translation(source, expected):
    assert zh.needs_translation(_code(source)) is expected


def test_a_shown_word_may_be_translated_but_the_same_word_as_a_key_may_not():
    en = 'steps = history["step"]\nax.plot(steps, history["loss"], label="loss")\nax.set_xlabel("step")'
    good = 'steps = history["step"]\nax.plot(steps, history["loss"], label="损失")\nax.set_xlabel("步数")'
    assert zh.faithfulness(en, good, "code", TERMS) == []
    for key_, bad in (("step", good.replace('history["step"]', 'history["步数"]')),   # a lookup key
                      ("loss", good.replace('history["loss"]', 'history["损失"]'))):
        found = zh.faithfulness(en, bad, "code", TERMS)
        assert len(found) == 1 and f"'\"{key_}\"' became" in found[0], found
    en_loc = 'ax.legend(title="Models", loc="upper center")'
    assert zh.faithfulness(en_loc, 'ax.legend(title="模型", loc="upper center")', "code", TERMS) == []
    assert zh.faithfulness(en_loc, 'ax.legend(title="模型", loc="上方居中")', "code", TERMS)
    en_sep = 'print("generators:", ", ".join(names))'
    assert zh.faithfulness(en_sep, 'print("生成器：", ", ".join(names))', "code", TERMS) == []
    assert zh.faithfulness(en_sep, 'print("生成器：", "，".join(names))', "code", TERMS)


# --- data stays byte-identical: Chinese text in the English edition, prompts ----------------------

@pytest.mark.parametrize("en, bad", [
    # a few-shot prompt with Chinese in it reads like prose, but the model reads it
    ('few_shot = "cat -> 猫\\ndog -> 狗\\nbird ->"\nprint(sample(model, few_shot, 30))',
     'few_shot = "猫 -> 猫\\n狗 -> 狗\\n鸟 ->"\nprint(sample(model, few_shot, 30))'),
    # an English input shown side by side with a Chinese one is data too
    ('for text in ["To be, or not to be.", "床前明月光，疑是地上霜。"]:\n    print(len(text))',
     'for text in ["生存还是毁灭。", "床前明月光，疑是地上霜。"]:\n    print(len(text))'),
    ('ids = tok.encode("Once upon a time")', 'ids = tok.encode("很久很久以前")'),           # fed to a tokenizer
    ('print(sample(model, "Once upon a time", 120))', 'print(sample(model, "从前", 120))'),  # and to a model
    ('print(model.generate("The cat sat"))', 'print(model.generate("猫坐着"))'),
    ('prompt = "ROMEO:\\nWhat say"', 'prompt = "罗密欧：\\n你说什么"'),                   # a name that holds a prompt
    ('explorer = Explorer(model, prompt="What say you", seed=0)', 'explorer = Explorer(model, prompt="你说什么", seed=0)'),
])
def test_data_strings_must_stay_byte_identical(en, bad):
    assert not zh.needs_translation(_code(en))  # nothing in it is prose
    found = zh.faithfulness(en, bad, "code", TERMS)
    assert found and "byte-identical" in found[0], found
    assert zh.faithfulness(en, en, "code", TERMS) == []


def test_data_rule_leaves_shown_sentences_next_to_it_translatable():
    en = 'print("before LoRA:\\n" + sample(model, "《春望》\\n", 120))'
    assert zh.faithfulness(en, 'print("LoRA 之前：\\n" + sample(model, "《春望》\\n", 120))', "code", TERMS) == []
    assert zh.faithfulness(en, 'print("LoRA 之前：\\n" + sample(model, "《春望》\\n\\n", 120))', "code", TERMS)


# --- dates: "January 10, 2023" is "2023 年 1 月 10 日" ---------------------------------------------

@pytest.mark.parametrize("chinese, ok", [
    ("规定自 2023 年 1 月 10 日起施行，GPT-4 发布于 2023 年 3 月。", True),
    ("规定自 2023 年 1月 10 日起施行，GPT-4 发布于 2023 年 3 月。", True),      # space before 月 optional
    ("规定自 2023 年 2 月 10 日起施行，GPT-4 发布于 2023 年 3 月。", False),     # the wrong month
    ("规定自 2023 年 1 月 10 日起施行，GPT-4 发布于 2023 年 3 月 3 日。", False),  # a day the English lacks
    ("规定自 2023 年 1 月 10 日起施行，GPT-4 发布于 2023 年 3 个版本。", False),  # a number that is no month
    ("规定自 2023 年 1 月 1 月 10 日起施行，GPT-4 发布于 2023 年 3 月。", False), # one month number per month name
])
def test_a_date_may_gain_its_month_number(chinese, ok):
    english = "The rules apply from January 10, 2023; GPT-4 was released in March 2023."
    found = zh.faithfulness(english, chinese, "markdown", TERMS)
    assert (found == []) if ok else any("numbers differ" in p for p in found), found


# --- missing and stale translations are named -------------------------------------------------------

@pytest.fixture
def tiny_course(tmp_path, monkeypatch):
    """A one-lesson course in tmp_path, with the checker's paths pointed at it."""
    notebooks, translations = tmp_path / "notebooks", tmp_path / "translations" / "zh-CN"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [_md("# Sampling"), _code("x = 1  # one sample"), _code("y = 2")]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    path = notebooks / "01_demo.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setattr(zh, "ROOT", tmp_path)
    monkeypatch.setattr(zh, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(zh, "ZH_NOTEBOOKS", notebooks / "zh")
    monkeypatch.setattr(zh, "TRANSLATIONS", translations)
    return path


def test_missing_then_translated_then_stale(tiny_course):
    problems = zh.check_lesson(tiny_course, terms={})
    assert len(problems) == 2 and all(p.startswith("missing:") for p in problems)
    assert "cell 0" in problems[0] and "cell-0" in problems[0]

    assert zh.update(tiny_course) == 2
    entries = zh.load_translations(tiny_course)
    entries[0]["zh"], entries[1]["zh"] = "# 采样", "x = 1  # 一个样本"
    zh.save_translations(tiny_course, entries)
    assert zh.check_lesson(tiny_course, terms={}) == []

    nb = nbformat.read(tiny_course, as_version=4)
    nb.cells[0].source = "# Sampling from the model"  # someone edits the English
    nbformat.write(nb, tiny_course)
    problems = zh.check_lesson(tiny_course, terms={})
    assert len(problems) == 1 and problems[0].startswith("stale:") and "cell-0" in problems[0]
    zh.update(tiny_course)
    entry = zh.load_translations(tiny_course)[0]
    assert entry["zh"] is None and entry["zh_before_change"] == "# 采样"  # the old text helps the translator


def test_build_inserts_the_language_cell_and_translates(tiny_course):
    zh.update(tiny_course)
    entries = zh.load_translations(tiny_course)
    entries[0]["zh"], entries[1]["zh"] = "# 采样", "x = 1  # 一个样本"
    zh.save_translations(tiny_course, entries)
    built = nbformat.read(zh.build(tiny_course), as_version=4)
    assert [c.source for c in built.cells] == ["# 采样", zh.LANGUAGE_CELL, "x = 1  # 一个样本", "y = 2"]
    assert [c.source for c in built.cells] == zh.expected_sources(tiny_course)


# --- the real lessons ----------------------------------------------------------------------------------

LESSONS = zh.lessons()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_prose_cell_has_a_faithful_current_translation(lesson):
    problems = zh.check_lesson(lesson)
    assert not problems, "\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more" if len(problems) > 20 else "")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_committed_chinese_notebook_is_what_the_build_writes(lesson):
    built = zh.ZH_NOTEBOOKS / lesson.name
    assert built.exists(), f"{built.relative_to(ROOT)} is missing: run `make zh`"
    sources = [c.source for c in nbformat.read(built, as_version=4).cells]
    assert sources == zh.expected_sources(lesson), (
        f"{built.relative_to(ROOT)} is out of date with {lesson.name} and its translations: run `make zh`")


DONE = ["00_welcome", "01_vae", "02_gan", "05_gpt2", "07_responsible_aigc"]


@pytest.mark.parametrize("stem", DONE)
def test_the_checker_accepts_a_finished_lesson(stem):
    """Real data: the finished translations pass every rule, including the context rules for strings."""
    lesson = zh.NOTEBOOKS / f"{stem}.ipynb"
    status = zh.status(lesson)
    assert status["share"] == 1.0 and status["cells"] > 10
    assert zh.check_lesson(lesson) == []


def test_real_data_strings_are_held_and_real_labels_are_translated():
    """Lesson 05 feeds Chinese poems and prompts to its models; lesson 07 labels an axis "share"."""
    entries = {e["id"]: e for e in zh.load_translations(zh.NOTEBOOKS / "05_gpt2.ipynb")}
    tokenizer_demo = entries["57e42d45"]  # English and Chinese text through the GPT-2 tokenizer
    assert "床前明月光，疑是地上霜。" in tokenizer_demo["zh"]
    for changed in (tokenizer_demo["zh"].replace("床前明月光", "床前明月"),
                    tokenizer_demo["zh"].replace("Hello world!", "你好，世界！")):
        found = zh.faithfulness(tokenizer_demo["en"], changed, "code", {})
        assert found and "byte-identical" in found[0], found
    labels = {e["id"]: e for e in zh.load_translations(zh.NOTEBOOKS / "07_responsible_aigc.ipynb")}["6ef0a7f0"]
    assert 'ylabel="share"' in labels["en"] and 'ylabel="share"' not in labels["zh"]


def test_terms_inside_longer_terms_are_rendered_alike():
    """If one term contains another ("invisible watermark", "watermark"), its rendering contains the other's."""
    terms = zh.load_terms()
    clashes = [(long, short) for long in terms for short in terms if long != short
               and re.search(rf"(?<![\w-]){re.escape(short.lower())}(?![\w-])", long.lower())
               and terms[short] not in terms[long]]
    assert not clashes


def test_no_translation_file_without_a_lesson():
    names = {p.stem for p in LESSONS}
    orphans = [p.name for p in zh.TRANSLATIONS.glob("*.json") if p.stem not in names]
    assert not orphans


def test_term_list_has_one_rendering_per_term():
    terms = json.loads(zh.TERMS.read_text(encoding="utf-8"))
    lowered = [t.lower() for t in terms]
    assert len(lowered) == len(set(lowered))
    assert all(isinstance(v, str) and zh.CJK.search(v) or v.isascii() for v in terms.values())


# --- Chinese in figures: real glyphs, not empty boxes -----------------------------------------------

def _draw(text: str) -> list[str]:
    """Draw ``text`` as a title and return matplotlib's missing-glyph complaints."""
    records = []

    class Catch(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Catch()
    logger = logging.getLogger("matplotlib")
    logger.addHandler(handler)
    try:
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig, ax = plt.subplots(figsize=(3, 2))
            ax.set_title(text)
            ax.set_xlabel("步数")
            fig.canvas.draw()
            plt.close(fig)
        records += [str(w.message) for w in caught]
    finally:
        logger.removeHandler(handler)
    return [r for r in records if "glyph" in r.lower()]


@pytest.fixture
def chinese():
    saved = dict(plt.rcParams)
    i18n.set_language("zh")
    yield
    i18n.set_language("en")
    plt.rcParams.update(saved)


def test_chinese_figure_text_has_glyphs(chinese):
    assert i18n.cjk_font_file() is not None, "the CJK font package noto-cjk-sans-otc is not installed: run `make setup`"
    assert _draw("重建与采样：变分自编码器") == []
    assert _draw(r"KL 散度 $\beta$ 的作用") == []  # 汉字 mixed with maths (mathtext)


def test_the_glyph_check_bites_without_the_font(chinese):
    plt.rcParams["font.family"] = ["DejaVu Sans"]
    assert _draw("重建与采样") != []


def test_english_figures_keep_their_font():
    i18n.use_cjk_font(first=False)
    assert plt.rcParams["font.family"][0] == "DejaVu Sans"


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        i18n.set_language("fr")
    assert i18n.language() == "en"


def test_tr_falls_back_to_english_and_fills_fields(monkeypatch):
    monkeypatch.setattr(i18n, "messages_zh", lambda: {"Step {n}": "第 {n} 步"})
    assert i18n.tr("Step {n}", n=3) == "Step 3"
    monkeypatch.setattr(i18n, "_language", "zh")
    assert i18n.tr("Step {n}", n=3) == "第 3 步"
    assert i18n.tr("Not in the table") == "Not in the table"
