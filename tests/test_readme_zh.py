"""README.zh-CN.md is a complete Chinese edition of README.md, not a summary that drifts.

Every expectation is read from README.md (or the Makefile), never from the Chinese file:
the two READMEs link to each other at the top, every ``make`` target and every
``python -m aigc_course ...`` command of README.md appears in README.zh-CN.md, and each
row of the lesson table carries the same numbers in both editions.
"""
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EN = (ROOT / "README.md").read_text(encoding="utf-8")
ZH = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
LANGUAGE_LINKS = "[English](README.md) | [简体中文](README.zh-CN.md)"

# A number as a reader sees it: 1,068,820 / 1.9e-6 / 0.6 / 2025. A digit glued to a letter
# before it (VGG19, R1, GPT2Tokenizer) is part of a name, not a number.
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:e-?\d+)?")
MAKE = re.compile(r"\bmake ([a-z][a-z0-9-]*)")
# A CLI command up to the end of its code span, its line or a shell comment.
CLI = re.compile(r"python -m aigc_course\b[^`\n#]*")


def _squash(text: str) -> str:
    return " ".join(text.split())


def lesson_rows(text: str) -> dict[str, Counter]:
    """The first table after the "## Lessons" / "## 课程" heading: first cell -> numbers in the row."""
    heading = re.search(r"^## (Lessons|课程)\s*$", text, re.MULTILINE)
    assert heading, "no lesson section"
    rows, started = {}, False
    for line in text[heading.end():].splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if set(cells[0]) <= set("-: "):
                continue  # the |---|---| separator line
            rows[cells[0]] = Counter(NUMBER.findall(re.sub(r"\]\([^)]*\)", "]", line)))  # not link targets
        elif started:
            break
    return rows


def test_both_readmes_open_with_the_same_language_links():
    for name, text in (("README.md", EN), ("README.zh-CN.md", ZH)):
        assert text.splitlines()[0] == LANGUAGE_LINKS, name
    assert "](README.zh-CN.md)" in EN and "](README.md)" in ZH


def test_every_make_target_of_the_english_readme_is_in_the_chinese_one():
    targets = set(MAKE.findall(EN))
    assert {"lab", "test", "lab-zh", "zh"} <= targets  # the parser sees the commands that matter
    missing = sorted(t for t in targets if f"make {t}" not in ZH)
    assert not missing, f"README.zh-CN.md never mentions: {['make ' + t for t in missing]}"


def test_every_cli_command_of_the_english_readme_is_in_the_chinese_one():
    commands = {_squash(c) for c in CLI.findall(EN)}
    assert len(commands) >= 15  # train, sample, stylize, generate, check, student, grade ...
    zh = _squash(ZH)
    missing = sorted(c for c in commands if c not in zh)
    assert not missing, f"README.zh-CN.md lacks these commands: {missing}"


def test_the_lesson_table_has_every_lesson_and_every_number_of_the_english_one():
    en, zh = lesson_rows(EN), lesson_rows(ZH)
    lessons = [k for k in en if k.isdigit()]
    assert lessons == [f"{i:02d}" for i in range(10)]  # the English table parsed: 00 to 09
    runtime_01 = re.search(r"\| (\d+) s \(([\d.]+) GB\) \|$", next(l for l in EN.splitlines() if l.startswith("| 01 |")))
    assert runtime_01 and en["01"][runtime_01.group(2)] >= 1 and en["05"]["1.9e-6"] == 1  # runtimes, exact figures
    assert [k for k in zh if k.isdigit()] == lessons
    for lesson in lessons:
        absent = en[lesson] - zh[lesson]  # multiset difference: numbers missing or too few times
        assert not absent, f"lesson {lesson}: the Chinese row lacks {dict(absent)}"


def _prose_words(text: str) -> list[str]:
    """Latin words outside code blocks and code spans (names such as VAE or FID count too)."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return re.findall(r"[A-Za-z]{2,}", re.sub(r"`[^`\n]*`", "", text))


def test_the_chinese_readme_is_a_full_translation_not_a_summary():
    # A full technical translation has about 1.5 to 2 汉字 per English word of prose; a summary of
    # half the text, or a file left partly in English, falls below these bounds.
    english_words = len(_prose_words(EN))
    hanzi = len(re.findall(r"[\u4e00-\u9fff]", ZH))
    assert hanzi >= 1.2 * english_words, (hanzi, english_words)
    assert len(_prose_words(ZH)) <= 0.2 * english_words  # what stays Latin: names, units, model ids
    # one Chinese heading per English heading (README.md's level-2 and level-3 sections)
    assert len(re.findall(r"^#{2,3} ", ZH, re.MULTILINE)) >= len(re.findall(r"^#{2,3} ", EN, re.MULTILINE))


@pytest.mark.parametrize("target", ["lab-zh", "zh"])
def test_the_chinese_make_targets_exist(target):
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), f"Makefile has no `{target}` rule"
    assert re.search(rf"^\.PHONY:.*\s{re.escape(target)}(\s|$)", makefile, re.MULTILINE)


def test_the_lesson_table_parser_catches_a_changed_number():
    """The check above can fail: a Chinese row with one runtime changed is caught."""
    row = next(line for line in ZH.splitlines() if line.startswith("| 01 |"))
    runtime = re.search(r"\| (\d+) s（[^|]*\|$", row)
    assert runtime, f"no runtime at the end of the Chinese row 01: {row[-40:]!r}"
    seconds = runtime.group(1)
    broken = ZH.replace(row, row[:runtime.start(1)] + str(int(seconds) + 1) + row[runtime.end(1):])
    assert broken != ZH
    assert lesson_rows(EN)["01"] - lesson_rows(broken)["01"] == Counter({seconds: 1})
