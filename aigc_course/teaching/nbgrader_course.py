"""An nbgrader course directory built from the lessons, graded by nbgrader or by the course's own grader.

nbgrader (https://nbgrader.readthedocs.io) runs a course as folders: ``source/ASSIGNMENT/``
(the teacher's notebooks), ``release/`` (solutions stripped), ``submitted/STUDENT/ASSIGNMENT/``
(collected), ``autograded/`` and ``feedback/``, with the scores in ``gradebook.db``. The lessons
already speak its language: solutions sit between ``### BEGIN SOLUTION`` / ``### END SOLUTION``
and :func:`~aigc_course.teaching.student.annotate_for_nbgrader` marks each exercise's check cell as
an autograded test cell worth 1 point.

``build_course(root, ["01_vae"])`` writes

* ``source/01_vae/01_vae.ipynb``: an **exercise sheet** (:func:`exercise_sheet`): the lesson's
  imports that the exercises use, then each exercise's statement, solution cell and check cell,
  in lesson order. It runs in seconds, not the lesson's minutes. ``full=True`` copies the whole
  lesson instead (its figures and explorers too; each autograde then runs the whole lesson);
* ``nbgrader_config.py``, which calls :func:`configure`.

Two ways to score (``configure(c, judge=...)``, or ``AIGC_NBGRADER_JUDGE`` in the environment):

* ``"course"`` (the default): nbgrader keeps the workflow (release, collect, gradebook, feedback),
  but **no learner code runs in nbgrader's kernel**: the autograde step's ``Execute`` is replaced
  by :class:`aigc_course.teaching.nbgrader_judge.CourseJudge`, which grades the submission with
  the course's isolated grader (hidden inputs, references stubbed, time/memory/output limits)
  and writes each exercise's verdict into its check cell, an error output where it failed. So the
  gradebook holds exactly the course grader's scores;
* ``"kernel"``: nbgrader's own way: run the notebook in a Jupyter kernel as the grading user and
  give a test cell its point when it does not raise. The check cells then judge the public inputs
  only, inside the learner's process: a submission that patches the check (or writes to
  ``gradebook.db``, which that process can open) gets points it did not earn. nbgrader's FAQ
  says so: "Does nbgrader protect against unsafe code? Not yet" (jupyter/nbgrader issue #483).
  ``tests/test_nbgrader_pipeline.py`` shows both on the same three submissions.
"""
from __future__ import annotations

import ast
import copy
import os
import re
from pathlib import Path

import nbformat

from aigc_course.core.i18n import tr
from aigc_course.teaching.student import (HINT, _checked_exercise, annotate_for_nbgrader, exercise_in_cell,
                                          has_solution, read_notebook)

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
JUDGES = ("course", "kernel")
JUDGE_ENV = "AIGC_NBGRADER_JUDGE"

CONFIG_FILE = '''\
"""nbgrader configuration of a course built from the aigc-course lessons (python -m aigc_course nbgrader build).

Scores come from the course's isolated grader (judge "course"); set AIGC_NBGRADER_JUDGE=kernel for
nbgrader's own in-kernel grading. See aigc_course/teaching/nbgrader_course.py.
"""
import os

from aigc_course.teaching.nbgrader_course import configure

c = get_config()  # noqa: F821 (defined by traitlets when it reads this file)
configure(c, root=os.path.dirname(os.path.abspath(__file__)), course_id={course_id!r},
          judge=os.environ.get("AIGC_NBGRADER_JUDGE", "course"))
'''


# ----------------------------------------------------------------------------- the exercise sheet


def _bound_names(node: ast.stmt) -> set[str]:
    return {(alias.asname or alias.name).split(".")[0] for alias in node.names}


def _imports_used(cells: list[str], used: set[str]) -> list[str]:
    """The lesson's top-level import statements that bind a name in ``used``, once each, in lesson order."""
    found: list[str] = []
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:  # cells with IPython magics: skip
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and _bound_names(node) & used:
                line = ast.unparse(node)
                if line not in found:
                    found.append(line)
    return found


def _without_hint_markers(source: str) -> str:
    """Keep the hint's lines, drop the course's hint markers (nbgrader does not know them)."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in HINT)


def exercise_sheet(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The exercises of lesson ``nb`` (file stem ``name``) as a short notebook nbgrader can grade.

    Cells: a title; one code cell with the lesson's imports that the exercise cells use (so
    ``torch``, ``F``... mean what they meant in the lesson); then, for each exercise, the Markdown
    cell just above its solution cell (the statement), the solution cell (hint markers removed,
    solution markers kept) and its check cell, with nbgrader metadata. The check cells are the
    lesson's own, so ``python -m aigc_course grade`` grades a submitted sheet as it grades the lesson.
    """
    cells = nb.cells
    keep: list[int] = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        if has_solution(cell.source) and exercise_in_cell(cell.source, name) is not None:
            statement = index > 0 and cells[index - 1].cell_type == "markdown"
            keep += [index - 1, index] if statement else [index]
        elif _checked_exercise(cell.source, name) is not None:
            keep.append(index)
    if not keep:
        raise ValueError(f"{name}: no exercises found (solution cells between '### BEGIN SOLUTION' markers "
                         f"that define a registered exercise's function, and their check cells)")
    exercise_code = [cells[i].source for i in keep if cells[i].cell_type == "code"]
    used = set(re.findall(r"[A-Za-z_]\w*", "\n".join(exercise_code)))
    code_cells = [c.source for c in cells if c.cell_type == "code"]
    imports = _imports_used(code_cells, used)
    sheet = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    title = cells[0].source.splitlines()[0].lstrip("# ") if cells and cells[0].cell_type == "markdown" else name
    sheet.cells.append(nbformat.v4.new_markdown_cell(
        "# " + tr("Exercises: {title}", title=title) + "\n\n" +
        tr("Write your code where it says `raise NotImplementedError()`, then run every cell. "
           "Each check prints one verdict line. The grader checks your functions again on inputs you do not see.")))
    sheet.cells.append(nbformat.v4.new_code_cell("\n".join(imports)))
    for i in keep:
        cell = copy.deepcopy(cells[i])  # keeps the lesson's cell id (unique there, so here too)
        if cell.cell_type == "code":
            cell.source = _without_hint_markers(cell.source)
            cell.outputs, cell.execution_count = [], None
        sheet.cells.append(cell)
    for cell in sheet.cells:
        cell.metadata.pop("nbgrader", None)
    return annotate_for_nbgrader(sheet, name)


# ----------------------------------------------------------------------------- the course directory


def _lesson_path(lesson: str | Path) -> Path:
    path = Path(lesson)
    if path.suffix == ".ipynb" and path.exists():
        return path
    path = NOTEBOOK_DIR / (str(lesson) if str(lesson).endswith(".ipynb") else f"{lesson}.ipynb")
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb")))
        raise FileNotFoundError(f"no lesson {lesson!r}: use a notebook path or one of {known}")
    return path


def build_course(root: Path, lessons: list[str | Path], full: bool = False, course_id: str = "aigc") -> list[Path]:
    """Write an nbgrader course directory at ``root``: one assignment per lesson (named after its file stem).

    Returns the source notebooks written. ``full=True`` uses the whole lesson, not its exercise sheet.
    """
    root = Path(root)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", course_id):
        raise ValueError(f"course id {course_id!r}: use letters, digits, '-' and '_' only")
    written = []
    for lesson in lessons:
        path = _lesson_path(lesson)
        nb = read_notebook(path)
        notebook = annotate_for_nbgrader(nb, path.stem) if full else exercise_sheet(nb, path.stem)
        target = root / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        written.append(target)
    (root / "nbgrader_config.py").write_text(CONFIG_FILE.format(course_id=course_id))
    return written


def configure(c, root: str | Path, course_id: str = "aigc", judge: str = "course",
              cell_timeout: int = 60, seed: int | None = None) -> None:
    """Fill the traitlets config ``c`` of an nbgrader course at ``root`` (see the module docstring).

    ``cell_timeout``: seconds per cell, for nbgrader's kernel (``Execute.timeout``) and for the
    course grader (per cell and per call of a graded function). ``seed`` fixes the course grader's
    hidden inputs (default: a fresh seed for each submission); give ``python -m aigc_course grade
    --seed`` the same one and the two agree on every submission, even one that is right on some
    hidden inputs and wrong on others.
    """
    if judge not in JUDGES:
        raise ValueError(f"judge {judge!r}: use one of {', '.join(JUDGES)}")
    root = Path(root).resolve()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = course_id
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.Exchange.root = str(root / "exchange")
    c.Exchange.path_includes_course = True
    c.Execute.timeout = cell_timeout
    c.LimitOutput.max_lines = 200            # per output of a cell, in the autograded notebook and the feedback
    if judge == "course":
        from nbgrader.converters.autograde import Autograde

        defaults = Autograde.class_traits()["autograde_preprocessors"].default()
        names = [p.__name__ for p in defaults]
        if "Execute" not in names:
            raise RuntimeError(f"this nbgrader's autograde steps have no Execute step to replace: {names}")
        steps = ["aigc_course.teaching.nbgrader_judge.CourseJudge" if n == "Execute" else p
                 for n, p in zip(names, defaults)]
        c.Autograde.autograde_preprocessors = steps
        c.CourseJudge.cell_timeout = cell_timeout
        if seed is not None:
            c.CourseJudge.seed = seed


def judge_from_env() -> str:
    return os.environ.get(JUDGE_ENV, "course")
