"""The Chinese notebooks work with the student build and the grader exactly like the English ones."""
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from aigc_course.teaching import grading

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "notebooks" / "zh"
ZH_LESSONS = sorted(ZH.glob("[0-9]*.ipynb"))

spec = importlib.util.spec_from_file_location("test_grading_tables", ROOT / "tests" / "test_grading.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)  # the lesson-01 answer tables (RIGHT, WRONG) the English grading tests use


@pytest.mark.parametrize("path", ZH_LESSONS, ids=lambda p: p.stem)
def test_student_build_of_a_chinese_lesson_removes_exactly_the_english_solutions(path, tmp_path):
    english = ROOT / "notebooks" / path.name
    zh_student = nbformat.read(grading.build_student([path], tmp_path / "zh")[0], as_version=4)
    en_student = nbformat.read(grading.build_student([english], tmp_path / "en")[0], as_version=4)
    stubs = lambda nb: re.findall(r"raise NotImplementedError\((.+?)\)", "\n".join(c.source for c in nb.cells))  # noqa: E731
    assert stubs(zh_student) == stubs(en_student) != []  # the same exercises, in the same order
    assert all("### BEGIN SOLUTION" not in c.source for c in zh_student.cells)


@pytest.mark.parametrize("path", ZH_LESSONS, ids=lambda p: p.stem)
def test_chinese_hints_do_not_give_answers(path):
    assert grading.hints_giving_answers(nbformat.read(path, as_version=4), path.stem) == []


def test_grader_scores_chinese_submissions_like_english_ones(tmp_path):
    chinese = 'from aigc_course.core import i18n\ni18n.set_language("zh")\n'
    for learner, bodies in (("right", tables.RIGHT), ("wrong", tables.WRONG)):
        (tmp_path / "subs" / learner).mkdir(parents=True)
        nbformat.write(tables._submission(bodies, before=chinese), tmp_path / "subs" / learner / "01_vae.ipynb")
    rows = {r.learner: r for r in grading.grade_folder(tmp_path / "subs", tmp_path / "report", cell_timeout=30,
                                                        progress=False, seed=3)}
    assert rows["right"].results == dict.fromkeys(tables.IDS, True), rows["right"].errors
    assert rows["wrong"].results == dict.fromkeys(tables.IDS, False)


def test_student_cli_builds_the_chinese_edition(tmp_path):
    from aigc_course.__main__ import main
    assert main(["student", "--lang", "zh", "01_vae", "--out", str(tmp_path)]) == 0
    built = nbformat.read(tmp_path / "01_vae.ipynb", as_version=4)
    assert any(c.get("id") == "zh-edition" for c in built.cells)  # the Chinese notebook, not the English one
