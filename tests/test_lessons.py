"""Every lesson notebook's exercises are wired up: registered, solved, checked, stripped for learners.

Runs on the committed notebooks without executing them (nbval executes them
separately), so a lesson whose exercise cells drift from the registry in
``aigc_course.teaching.exercises`` fails here with a clear message.
"""
from pathlib import Path

import nbformat
import pytest

from aigc_course.teaching import grading
from aigc_course.teaching.exercises import EXERCISES, exercises_for

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_solved_then_checked_and_stripped_for_learners(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for exercise in exercises_for(path.stem):
        solved = [i for i, c in enumerate(code) if grading.has_solution(c.source)
                  and grading.exercise_in_cell(c.source, path.stem) is exercise]
        assert len(solved) == 1, f"{path.name}: exercise {exercise.id} needs one solution cell defining {exercise.function}"
        check = code[solved[0] + 1].source
        assert check.startswith(grading.CHECK_MARK) and f"({exercise.function})" in check, \
            f"{path.name}: the cell after exercise {exercise.id}'s solution must be its {grading.CHECK_MARK} check"
        assert code[solved[0]].metadata["nbgrader"]["solution"] is True
        assert code[solved[0] + 1].metadata["nbgrader"]["points"] == 1
        verdicts = "".join(o.get("text", "") for o in code[solved[0] + 1].get("outputs", []))
        assert verdicts.strip() == f"Exercise {exercise.id} {exercise.title}: correct", \
            f"{path.name}: the committed check of exercise {exercise.id} says {verdicts!r}"
    student = grading.student_notebook(nb, path.stem)
    assert not any(grading.has_solution(c.source) for c in student.cells)


def test_every_registered_exercise_lives_in_a_lesson():
    stems = {p.stem for p in NOTEBOOKS}
    homeless = [e.id for e in EXERCISES.values() if e.notebook not in stems]
    assert not homeless, f"exercises registered for notebooks that do not exist: {homeless}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_show_no_bare_object_reprs(path):
    """An explorer that fails to display itself leaves '<aigc_course.widgets.X at 0x...>' behind."""
    import re

    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
            assert not re.search(r"<aigc_course\.[\w.]+ (object )?at 0x", text), f"{path.name}, cell {index}: {text[:80]}"
