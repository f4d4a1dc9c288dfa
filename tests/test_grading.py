"""Student builds, nbgrader metadata and the grader, on the real lesson and on small fixture submissions."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from aigc_course.teaching import grading

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "01_vae.ipynb"

RIGHT = {"my_reparameterize": "return mu + torch.exp(0.5 * logvar) * eps",
         "my_kl": "return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)"}
WRONG = {"my_reparameterize": "return mu + torch.exp(logvar) * eps",
         "my_kl": "return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)"}
SIGNATURES = {"my_reparameterize": "mu, logvar, eps", "my_kl": "mu, logvar"}
CHECKS = {"my_reparameterize": "check_reparameterize", "my_kl": "check_kl"}


def _submission(bodies: dict[str, str], *, before: str = "", keep_checks: bool = True, extra_check: str = ""):
    """A small '01_vae' notebook with the two exercises (the real lesson takes ~40 s to run)."""
    cells = [nbformat.v4.new_code_cell("import torch\n" + before)]
    for name, body in bodies.items():
        cells.append(nbformat.v4.new_code_cell(f"def {name}({SIGNATURES[name]}):\n    {body}"))
        if keep_checks:
            cells.append(nbformat.v4.new_code_cell(
                f"# NBVAL_CHECK_OUTPUT\nfrom aigc_course.teaching.exercises import {CHECKS[name]}\n"
                f"{CHECKS[name]}({name}){extra_check}"))
    return nbformat.v4.new_notebook(cells=cells)


# ------------------------------------------------------------------ markers and the student build

def test_markers_nested_or_unbalanced_are_named():
    with pytest.raises(grading.MarkerError, match="nb.ipynb, cell 3, line 2.*nested"):
        grading._regions("### BEGIN SOLUTION\n### BEGIN HINT\n### END HINT\n### END SOLUTION", "nb.ipynb, cell 3")
    with pytest.raises(grading.MarkerError, match="never closed"):
        grading._regions("x = 1\n    ### BEGIN SOLUTION\nx = 2", "nb")
    with pytest.raises(grading.MarkerError, match="without a matching"):
        grading._regions("### END SOLUTION", "nb")


def test_strip_solutions_keeps_hints_and_indentation():
    source = ("def f(x):\n    ### BEGIN HINT\n    # square it\n    ### END HINT\n"
              "    ### BEGIN SOLUTION\n    return x ** 2\n    ### END SOLUTION\n")
    assert grading.strip_solutions(source, "Exercise 9.9: square", "nb") == (
        "def f(x):\n    # square it\n    # YOUR CODE HERE\n    raise NotImplementedError('Exercise 9.9: square')")


def test_student_build_of_the_lesson(tmp_path):
    lesson = nbformat.read(LESSON, as_version=4)
    paths = grading.build_student([LESSON], tmp_path / "a")
    student = nbformat.read(paths[0], as_version=4)
    assert len(student.cells) == len(lesson.cells)
    changed = [i for i, (a, b) in enumerate(zip(lesson.cells, student.cells)) if a.source != b.source]
    assert [student.cells[i].source.count("raise NotImplementedError('Exercise 1.") for i in changed] == [1, 1]
    for i in changed:
        assert "BEGIN" not in student.cells[i].source and student.cells[i].outputs == []
        assert "# torch.exp" in student.cells[i].source or "# compute the bracket" in student.cells[i].source
    checks = [c for c in student.cells if grading.CHECK_MARK in c.source]
    assert [c.outputs[0]["text"].split(":")[1].strip() for c in checks] == ["correct", "correct"]
    grading.build_student([LESSON], tmp_path / "b")  # deterministic
    assert (tmp_path / "a" / "01_vae.ipynb").read_bytes() == (tmp_path / "b" / "01_vae.ipynb").read_bytes()


def test_bad_markers_in_a_notebook_name_notebook_and_cell(tmp_path):
    nb = _submission(RIGHT)
    nb.cells[1].source = "def my_kl(mu, logvar):\n    ### BEGIN SOLUTION\n    return mu\n"
    with pytest.raises(grading.MarkerError, match=r"01_vae.ipynb, cell 1, line 2"):
        grading.student_notebook(nb, "01_vae")


def test_lesson_notebooks_carry_nbgrader_metadata():
    nb = nbformat.read(LESSON, as_version=4)
    meta = [c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata]
    assert [(m["grade_id"], m["solution"], m["grade"]) for m in meta] == [
        ("ex1_1_solution", True, False), ("ex1_1_check", False, True),
        ("ex1_2_solution", True, False), ("ex1_2_check", False, True)]


@pytest.mark.skipif(not (Path(sys.executable).parent / "nbgrader").exists(), reason="nbgrader is not installed")
def test_nbgrader_generate_assignment_strips_our_solutions(tmp_path):
    source = tmp_path / "source" / "vae"
    source.mkdir(parents=True)
    shutil.copy(LESSON, source / "01_vae.ipynb")
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from the same environment
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run([str(Path(bin_dir) / "nbgrader"), "generate_assignment", "vae", "--force",
                             "--CourseDirectory.root=.", f"--CourseDirectory.db_url=sqlite:///{tmp_path}/gb.db"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    release = nbformat.read(tmp_path / "release" / "vae" / "01_vae.ipynb", as_version=4)
    text = "\n".join(c.source for c in release.cells)
    assert "BEGIN SOLUTION" not in text and "torch.exp(0.5 * logvar) * eps" not in text
    assert text.count("raise NotImplementedError()") == 2


# ------------------------------------------------------------------ the grader

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    escape = tmp_path_factory.mktemp("outside") / "escaped.txt"
    cases = {
        "alice_all_right": _submission(RIGHT, before="import matplotlib.pyplot as plt\nplt.plot([1, 2]);"),
        "bob_all_wrong": _submission(WRONG),
        "carol_partly": _submission({"my_reparameterize": RIGHT["my_reparameterize"], "my_kl": WRONG["my_kl"]}),
        "dave_infinite_loop": _submission(RIGHT, before="while True:\n    pass"),
        "erin_slow_answer": _submission({"my_reparameterize": RIGHT["my_reparameterize"],
                                         "my_kl": "while True:\n        pass"}),
        "frank_kernel_crash": _submission(RIGHT, before="import os\nos._exit(1)"),
        "heidi_no_checks": _submission(RIGHT, keep_checks=False),
        "ivan_tampers": _submission(WRONG, extra_check=(
            "\nimport aigc_course.teaching.exercises as ex\nex.Exercise.judge = lambda self, got: (True, 'correct')"
            "\ntorch.allclose = lambda *a, **k: True\nprint('Exercise 1.1 reparameterisation: correct')")),
        "judy_escapes": _submission(RIGHT, before=f"open({str(escape)!r}, 'w').write('x')"),
        "kim_memory_hog": _submission(RIGHT, before="hog = bytearray(64 * 2**30)"),
    }
    for learner, nb in cases.items():
        (root / learner).mkdir()
        nbformat.write(nb, root / learner / "01_vae.ipynb")
    (root / "mallory_broken").mkdir()
    (root / "mallory_broken" / "01_vae.ipynb").write_text("{ this is not json")
    rows = grading.grade_folder(root, root / "report", cell_timeout=10, notebook_timeout=120, progress=False)
    return {row.learner: row for row in rows}, root, escape


def test_scores_recomputed_from_the_learners_objects(graded):
    rows, _, _ = graded
    scores = {learner: (row.results, row.score) for learner, row in rows.items()}
    assert scores["alice_all_right"] == ({"1.1": True, "1.2": True}, 2)
    assert scores["bob_all_wrong"] == ({"1.1": False, "1.2": False}, 0)
    assert scores["carol_partly"] == ({"1.1": True, "1.2": False}, 1)
    assert scores["ivan_tampers"][1] == 0  # printed or patched verdicts do not count
    assert rows["alice_all_right"].errors == []


def test_hostile_submissions_are_reported_not_fatal(graded):
    rows, _, escape = graded
    assert rows["dave_infinite_loop"].score == 2
    assert rows["dave_infinite_loop"].errors == ["cell 0: stopped at the time limit (10 s per cell)"]
    assert rows["erin_slow_answer"].results == {"1.1": True, "1.2": False}
    assert rows["frank_kernel_crash"].score == 0
    assert any("kernel died" in e for e in rows["frank_kernel_crash"].errors)
    assert rows["heidi_no_checks"].score == 2
    assert any("check cell for exercise 1.1 is missing" in e for e in rows["heidi_no_checks"].errors)
    assert rows["judy_escapes"].score == 2 and not escape.exists()
    assert any(e.startswith("blocked: open") for e in rows["judy_escapes"].errors)
    assert rows["kim_memory_hog"].score == 2  # the allocation fails inside the limit; the rest still runs
    assert any("MemoryError" in e for e in rows["kim_memory_hog"].errors)
    assert rows["mallory_broken"].score == 0
    assert any("not a readable notebook" in e for e in rows["mallory_broken"].errors)


def test_report_files(graded):
    rows, root, _ = graded
    with open(root / "report.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == 11
    alice = next(r for r in table if r["learner"] == "alice_all_right")
    assert (alice["exercise 1.1"], alice["exercise 1.2"], alice["score"], alice["max"]) == ("pass", "pass", "2", "2")
    md = (root / "report.md").read_text()
    assert md.startswith("| learner | notebook | exercise 1.1 | exercise 1.2 | score | max |")
    assert md.count("\n") == 13


def test_grade_cli(tmp_path, capsys):
    from aigc_course.__main__ import main
    (tmp_path / "subs").mkdir()
    nbformat.write(_submission(RIGHT), tmp_path / "subs" / "01_vae.ipynb")
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "r"), "--cell-timeout", "20"]) == 0
    out = capsys.readouterr().out
    assert "| 01_vae | 01_vae | pass | pass | 2 | 2 |" in out
    assert json.loads(json.dumps(out)) and (tmp_path / "r.csv").exists()


def test_student_notebook_fails_exactly_at_the_check_cells(tmp_path):
    """nbval on the student version: only the two check cells fail (about 40 s: the whole lesson runs)."""
    student = grading.build_student([LESSON], tmp_path)[0]
    result = subprocess.run([sys.executable, "-m", "pytest", str(student), "--nbval-lax", "--nbval-current-env",
                             "-p", "no:cacheprovider", "-q", "-o", "addopts=", "--rootdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    failed = sorted(line.split("::")[1].split(" - ")[0] for line in result.stdout.splitlines()
                    if line.startswith("FAILED"))
    nb = nbformat.read(student, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]  # nbval numbers code cells only
    checks = sorted(f"Cell {i}" for i, c in enumerate(code_cells) if grading.CHECK_MARK in c.source)
    assert failed == checks, result.stdout[-3000:]
    # Pasting the solutions back gives the lesson notebook's code again (which nbval passes, see notebooks/).
    lesson = nbformat.read(LESSON, as_version=4)
    for cell, original in zip(nb.cells, lesson.cells):
        if "raise NotImplementedError('Exercise" in cell.source:
            cell.source = original.source
    assert [c.source for c in nb.cells] == [c.source for c in lesson.cells]
