"""Student builds, nbgrader metadata and the grader, on the real lesson and on small fixture submissions."""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from aigc_course.teaching import grading
from lesson01_answers import CHECKS, IDS, RIGHT, SIGNATURES, WRONG

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "01_vae.ipynb"



def _submission(bodies: dict[str, str], *, before: str = "", keep_checks: bool = True, extra_check: str = ""):
    """A small '01_vae' notebook with the lesson's exercises (the real lesson takes ~40 s to run)."""
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
    assert [student.cells[i].source.count("raise NotImplementedError('Exercise 1.") for i in changed] == [1] * 5
    for i in changed:
        assert "BEGIN" not in student.cells[i].source and student.cells[i].outputs == []
    for i, hint in zip(changed, ("# torch.exp", "# compute the bracket", "# forward: encode")):
        assert hint in student.cells[i].source
    checks = [c for c in student.cells if grading.CHECK_MARK in c.source]
    assert [c.outputs[0]["text"].split(":")[1].strip() for c in checks] == ["correct"] * 5
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
        (f"ex1_{k}_{part}", part == "solution", part == "check") for k in range(1, 6) for part in ("solution", "check")]


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
    assert text.count("raise NotImplementedError()") == 5


# ------------------------------------------------------------------ hints guide, never answer

def test_a_hint_that_gives_a_solution_line_is_caught():
    solution = ["    b, c, h, w = features.shape", "    flat = features.reshape(b, c, h * w)",
                "    return flat @ flat.transpose(1, 2) / (c * h * w)"]
    # the same line with other names and spacing still gives the answer away
    assert grading.gives_answer("# x = feats.reshape(B,C,H*W)", solution) == "flat = features.reshape(b, c, h * w)"
    assert grading.gives_answer("# try flat@flat.transpose(1,2)/(c*h*w)", solution).startswith("return flat @")
    # pointing the way is fine; so is naming a function, and a line too short to be an answer
    assert grading.gives_answer("# flatten H and W into one dimension, then a batched product with the "
                                "transpose; divide by C*H*W", solution) is None
    assert grading.gives_answer("# features.shape gives (B, C, H, W)", solution) is None


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")), ids=lambda p: p.stem)
def test_lesson_hints_do_not_give_answers(path):
    assert grading.hints_giving_answers(nbformat.read(path, as_version=4), path.stem) == []


def test_hint_check_reads_hint_blocks_of_a_lesson():
    nb = _submission(RIGHT)
    nb.cells[1].source = ("def my_reparameterize(mu, logvar, eps):\n    ### BEGIN HINT\n"
                          "    # return m + torch.exp(0.5 * lv) * e\n    ### END HINT\n    ### BEGIN SOLUTION\n"
                          "    return mu + torch.exp(0.5 * logvar) * eps\n    ### END SOLUTION")
    found = grading.hints_giving_answers(nb, "01_vae")
    assert len(found) == 1 and "01_vae, cell 1, hint block" in found[0]


# ------------------------------------------------------------------ the grader (see test_hostile_grading.py)

def test_grade_cli_with_two_jobs(tmp_path, capsys):
    from aigc_course.__main__ import main
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ben").mkdir()
    nbformat.write(_submission(RIGHT), tmp_path / "subs" / "ann" / "01_vae.ipynb")
    nbformat.write(_submission(WRONG), tmp_path / "subs" / "ben" / "01_vae.ipynb")
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "r"), "--cell-timeout", "20",
                 "--jobs", "2", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "| ann | 01_vae | pass | pass | pass | pass | pass | 5 | 5 |" in out
    assert "| ben | 01_vae | fail | fail | fail | fail | fail | 0 | 5 |" in out
    with open(tmp_path / "r.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["learner"], r["score"], r["max"]) for r in table] == [("ann", "5", "5"), ("ben", "0", "5")]
    assert "1.3: public case: Exercise 1.3 VAE training step: not yet - after 150 steps" in table[1]["errors"]
    assert "1.2: public case: Exercise 1.2 KL divergence: not yet - expected shape (5,)" in table[1]["errors"]


def test_grade_cli_names_a_missing_folder(tmp_path, capsys):
    from aigc_course.__main__ import main
    assert main(["grade", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder of submissions" in capsys.readouterr().err


def test_real_lesson_submissions(tmp_path):
    """The lesson notebook itself (all solved) and its learner version (unfinished), graded in one run (~1 min)."""
    (tmp_path / "teacher").mkdir()
    shutil.copy(LESSON, tmp_path / "teacher" / "01_vae.ipynb")
    grading.build_student([LESSON], tmp_path / "learner")
    rows = {r.learner: r for r in grading.grade_folder(tmp_path, tmp_path / "report", cell_timeout=120,
                                                        notebook_timeout=400, progress=False, jobs=2)}
    assert rows["teacher"].results == dict.fromkeys(IDS, True), rows["teacher"].errors
    assert rows["learner"].results == dict.fromkeys(IDS, False)
    assert "1.1: public case: Exercise 1.1 reparameterisation: not yet - the exercise is not done yet" \
        in "; ".join(rows["learner"].errors)


def test_student_notebook_fails_exactly_at_the_check_cells(tmp_path):
    """nbval on the student version: only the check cells fail (the whole lesson runs).

    Lesson 05 runs in half the time of 01 (27 against 52 s on one thread), and like 01 its only
    NBVAL_CHECK_OUTPUT cells are exercise checks (09 marks measured tables that way too).
    """
    lesson_path = ROOT / "notebooks" / "05_gpt2.ipynb"
    student = grading.build_student([lesson_path], tmp_path)[0]
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
    lesson = nbformat.read(lesson_path, as_version=4)
    for cell, original in zip(nb.cells, lesson.cells):
        if any(f"raise NotImplementedError({q}Exercise" in cell.source for q in "'\""):
            cell.source = original.source
    assert [c.source for c in nb.cells] == [c.source for c in lesson.cells]


def test_reuse_check_flags_the_package_block_inside_my_block():
    """5.4 cannot stub the package's Block (5.7's grading run trains a GPT with it), so the static check names it."""
    from aigc_course.teaching import reuse
    from aigc_course.teaching.exercises import EXERCISES

    wrapped = ("from aigc_course.models.gpt import Block as B\n"
               "def my_block(x, weights, n_head):\n"
               "    block = B(config_for(weights, n_head)); block.load_state_dict(weights)\n"
               "    return block(x)\n")
    by_attribute = ("import aigc_course.models.gpt as g\n"
                    "def my_block(x, weights, n_head):\n"
                    "    return g.CausalSelfAttention(cfg)(x)\n")
    honest = ("import torch.nn.functional as F\n"
              "def my_block(x, weights, n_head):\n"
              "    return x + F.linear(F.layer_norm(x, x.shape[-1:]), weights['attn.c_proj.weight'])\n")
    for source, culprit in ((wrapped, "Block"), (by_attribute, "CausalSelfAttention")):
        found, _ = reuse.scan([source], [EXERCISES["5.4"]])
        assert found.get("5.4", "").endswith(f"aigc_course.models.gpt:{culprit}"), (culprit, found)
    assert reuse.scan([honest], [EXERCISES["5.4"]]) == ({}, None)
