"""Learner versions of the lesson notebooks, nbgrader metadata, and a check that hints do not give answers.

A lesson notebook holds the solutions between markers::

    def my_kl(mu, logvar):
        ### BEGIN HINT
        # sum over the last dimension
        ### END HINT
        ### BEGIN SOLUTION
        return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
        ### END SOLUTION

* ``student_notebook`` turns it into the learner's version: each solution
  becomes ``raise NotImplementedError("Exercise 1.2: KL divergence")``, hints stay
  (without their markers), the exercise cells' outputs are cleared, and the
  check cells keep their stored *correct* verdicts, so ``pytest --nbval-lax``
  passes exactly when the learner's answers are right.
* ``annotate_for_nbgrader`` adds nbgrader's cell metadata (solution cells and
  graded check cells), so ``nbgrader generate_assignment`` accepts the lesson
  notebooks as they are.
* ``hints_giving_answers`` lists hints that contain a solution line (compared
  after normalising whitespace and names), because a hint guides, never answers.
"""
from __future__ import annotations

import copy
import difflib
import keyword
import re
from pathlib import Path

import nbformat

from aigc_course.core.i18n import tr
from aigc_course.teaching.exercises import Exercise, exercises_for

SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HINT = ("### BEGIN HINT", "### END HINT")
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


class MarkerError(ValueError):
    """Solution or hint markers that are unbalanced or nested."""


# ----------------------------------------------------------------------------- markers


def _regions(source: str, where: str) -> list[tuple[str, int, int]]:
    """(kind, begin line, end line) of each marked region; clear errors for bad nesting."""
    regions, open_kind, open_line = [], None, 0
    markers = {SOLUTION[0]: ("solution", "begin"), SOLUTION[1]: ("solution", "end"),
               HINT[0]: ("hint", "begin"), HINT[1]: ("hint", "end")}
    for number, line in enumerate(source.splitlines()):
        kind_side = markers.get(line.strip())
        if kind_side is None:
            continue
        kind, side = kind_side
        if side == "begin":
            if open_kind is not None:
                raise MarkerError(f"{where}, line {number + 1}: '{line.strip()}' inside an open {open_kind} "
                                  f"block (opened on line {open_line + 1}); markers cannot be nested")
            open_kind, open_line = kind, number
        else:
            if open_kind != kind:
                raise MarkerError(f"{where}, line {number + 1}: '{line.strip()}' without a matching "
                                  f"'### BEGIN {kind.upper()}'")
            regions.append((kind, open_line, number))
            open_kind = None
    if open_kind is not None:
        raise MarkerError(f"{where}, line {open_line + 1}: '### BEGIN {open_kind.upper()}' is never closed")
    return regions


def has_solution(source: str) -> bool:
    return any(line.strip() == SOLUTION[0] for line in source.splitlines())


def exercise_in_cell(source: str, notebook: str) -> Exercise | None:
    """The registered exercise whose function this cell defines (``def my_kl(``), if any."""
    defined = set(re.findall(r"^\s*def\s+(\w+)\s*\(", source, flags=re.M))
    return next((e for e in exercises_for(notebook) if e.function in defined), None)


def strip_solutions(source: str, label: str, where: str) -> str:
    """Replace each solution block by a ``raise NotImplementedError(label)``; keep hint text."""
    lines = source.splitlines()
    regions = _regions(source, where)
    out, skip_until = [], -1
    starts = {begin: (kind, end) for kind, begin, end in regions}
    ends = {end for _, _, end in regions}
    for number, line in enumerate(lines):
        if number <= skip_until:
            continue
        if number in starts:
            kind, end = starts[number]
            if kind == "solution":
                indent = line[: len(line) - len(line.lstrip())]
                out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError({label!r})"]
                skip_until = end
            continue  # a hint's BEGIN marker: drop the marker, keep its lines
        if number in ends:
            continue
        out.append(line)
    return "\n".join(out)


# ----------------------------------------------------------------------------- student version


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The learner's version of lesson notebook ``nb`` (file stem ``name``); ``nb`` is not changed."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        where = f"{name}.ipynb, cell {index}"
        if cell.cell_type != "code":
            continue
        _regions(cell.source, where)  # validate every cell, not only exercise cells
        if not (has_solution(cell.source) or any(m in cell.source for m in HINT)):
            continue
        exercise = exercise_in_cell(cell.source, name)
        label = (tr("Exercise {id}: {title}", id=exercise.id, title=exercise.title_text()) if exercise
                 else tr("Exercise: your code here"))
        cell.source = strip_solutions(cell.source, label, where)
        cell.outputs, cell.execution_count = [], None
    return nb


def build_student(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """Write the student version of each notebook into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = read_notebook(path)
        target = out_dir / path.name
        nbformat.write(student_notebook(nb, path.stem), target)
        written.append(target)
    return written


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise
    except Exception as err:  # nbformat raises several types for broken JSON / schema
        raise ValueError(f"{path} is not a readable notebook ({type(err).__name__}: {err})") from err


# ----------------------------------------------------------------------------- nbgrader


def annotate_for_nbgrader(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Add nbgrader metadata in place: solution cells, and check cells graded 1 point each."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        exercise = exercise_in_cell(cell.source, name) if has_solution(cell.source) else None
        if exercise is not None:
            _regions(cell.source, f"{name}.ipynb, cell {index}")
            cell.metadata["nbgrader"] = _nbgrader(f"ex{exercise.id.replace('.', '_')}_solution", solution=True)
            continue
        checked = _checked_exercise(cell.source, name)
        if checked is not None:
            cell.metadata["nbgrader"] = _nbgrader(f"ex{checked.id.replace('.', '_')}_check", grade=True)
    return nb


def _checked_exercise(source: str, name: str) -> Exercise | None:
    if CHECK_MARK not in source:
        return None
    return next((e for e in exercises_for(name) if re.search(rf"\(\s*{e.function}\s*\)", source)), None)


def _nbgrader(grade_id: str, solution: bool = False, grade: bool = False) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": grade, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = 1
    return meta


# ----------------------------------------------------------------------------- hints


def normalise_code(text: str) -> str:
    """Code (or a hint) with whitespace removed and every name but keywords and attributes replaced by ``v``.

    ``flat @ flat.transpose(1, 2)`` and ``x @ x.transpose(1,2)`` both become ``v@v.transpose(1,2)``.
    """
    text = re.sub(r"(?<![\w.])[A-Za-z_]\w*", lambda m: m.group() if keyword.iskeyword(m.group()) else "v", text)
    return re.sub(r"\s+", "", text)


def gives_answer(hint: str, solution_lines: list[str], share: float = 0.85, shortest: int = 12) -> str | None:
    """The solution line that ``hint`` reproduces, if any.

    A line counts when at least ``share`` of its normalised text (``return`` and
    assignment targets dropped, at least ``shortest`` characters) appears as one
    contiguous block in the normalised hint.
    """
    hint_n = normalise_code(hint)
    for line in solution_lines:
        code = re.sub(r"^\s*(return\s+|[\w\s,]+=(?!=)\s*)", "", line.split("#")[0])
        norm = normalise_code(code)
        if len(norm) < shortest:
            continue
        match = difflib.SequenceMatcher(None, norm, hint_n, autojunk=False).find_longest_match(
            0, len(norm), 0, len(hint_n))
        if match.size >= share * len(norm):
            return line.strip()
    return None


def hints_giving_answers(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Every hint of lesson ``nb`` (hint blocks and the exercises' verdict hints) that gives a solution line."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not has_solution(cell.source):
            continue
        lines = cell.source.splitlines()
        regions = _regions(cell.source, f"{name}.ipynb, cell {index}")
        solution = [ln for kind, a, b in regions if kind == "solution" for ln in lines[a + 1:b]]
        hints = [("hint block", ln) for kind, a, b in regions if kind == "hint" for ln in lines[a + 1:b]]
        exercise = exercise_in_cell(cell.source, name)
        if exercise is not None:
            hints.append((f"verdict hint of {exercise.id}", exercise.hint_text()))
        for where, hint in hints:
            line = gives_answer(hint, solution)
            if line:
                found.append(f"{name}, cell {index}, {where}: {hint.strip()!r} gives {line!r}")
    return found
