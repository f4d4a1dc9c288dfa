"""``CourseJudge``: an nbgrader autograde step that scores a submission with the course's isolated grader.

nbgrader's autograde runs a list of preprocessors on each collected notebook; the default list
starts with ``Execute`` (run every cell in a Jupyter kernel as the grading user) and later
``SaveAutoGrades`` gives each test cell its points unless its output holds an error.
:func:`aigc_course.teaching.nbgrader_course.configure` puts ``CourseJudge`` where ``Execute`` was:

1. write the submitted notebook (as collected; nbgrader has already restored the locked check
   cells) to a private temporary folder;
2. grade it with :func:`aigc_course.teaching.grader.grade_submission`: its code runs only in the
   course's sandbox, the exercises are judged on hidden inputs in this process;
3. give each check cell one output line, the verdict, plus an ``error`` output when the exercise
   failed, so ``SaveAutoGrades`` records exactly the course grader's pass/fail as 1/0 points and
   ``generate_feedback`` shows the learner why.

The learner's code never runs in nbgrader's own process or kernel, so it cannot reach
``gradebook.db``, the ``source/`` solutions or other learners' files through them.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

from aigc_course.core.i18n import tr
from aigc_course.teaching.exercises import EXERCISES
from aigc_course.teaching.grader import Settings, grade_submission, grading_run
from aigc_course.teaching.student import _checked_exercise

ENAME = "NotCorrect"


class CourseJudge(NbGraderPreprocessor):
    """Scores the check cells of a submission with the course's grader (see the module docstring)."""

    cell_timeout = Integer(60, help="seconds per cell and per call of a graded function").tag(config=True)
    notebook_timeout = Integer(600, help="seconds per submission, start to finish").tag(config=True)
    memory_mb = Integer(8192, help="address space of each of the submission's processes").tag(config=True)
    seed = Integer(None, allow_none=True, help="seed of the hidden inputs (None: fresh for each submission)"
                   ).tag(config=True)
    draws = Integer(3, help="hidden draws per exercise, besides the public and edge cases").tag(config=True)
    slot = Integer(0, help="the grader's job slot (sandbox user id offset)").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        name = resources["nbgrader"]["notebook"]
        student = resources["nbgrader"]["student"]
        settings = Settings(cell_timeout=self.cell_timeout, notebook_timeout=self.notebook_timeout,
                            memory_mb=self.memory_mb, draws=self.draws)
        with tempfile.TemporaryDirectory(prefix="aigc-nbgrader-") as tmp:
            path = Path(tmp) / f"{name}.ipynb"
            nbformat.write(nb, path)
            with grading_run(settings, self.seed) as run:
                row = grade_submission(path, student, run, self.slot)
        self.log.info("course grader: %s/%s scored %d/%d in %.1f s", student, name, row.score, row.max_score,
                      row.seconds)
        general = [e for e in row.errors if not _for_exercise(e)]
        for cell in nb.cells:
            if cell.cell_type != "code" or not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                continue
            exercise = _checked_exercise(cell.source, name)
            if exercise is None:
                continue
            ok = row.results.get(exercise.id, False)
            cell.outputs = [_verdict(exercise.id, ok, [e for e in row.errors if _for_exercise(e) == exercise.id],
                                     general)]
            if not ok:
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename=ENAME, evalue=tr("Exercise {id} failed in the course grader", id=exercise.id),
                    traceback=[]))
            cell.execution_count = None
        resources.setdefault("aigc_course", {})["grade_row"] = row
        return nb, resources


def _for_exercise(error: str) -> str | None:
    """The exercise id an error line of the grader's report is about (``"1.2: ..."``), or None."""
    head = error.split(":", 1)[0]
    return head if head in EXERCISES else None


def _verdict(exercise_id: str, ok: bool, own: list[str], general: list[str]) -> NotebookNode:
    exercise = EXERCISES[exercise_id]
    if ok:
        text = tr("Exercise {id} {title}: correct (course grader, hidden inputs)", id=exercise.id,
                  title=exercise.title)
    else:
        why = [e.split(":", 1)[1].strip() for e in own] + general
        text = tr("Exercise {id} {title}: not yet (course grader)", id=exercise.id, title=exercise.title)
        text += "".join(f"\n  - {line}" for line in why)
    return nbformat.v4.new_output("stream", name="stdout", text=text + "\n")
