"""Assignments from one source: student notebooks, nbgrader metadata, and a grader.

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
* ``grade_folder`` runs every submission in a fresh kernel (``nbclient``) in
  its own process with time and memory limits, recomputes each verdict from the
  learner's objects (it never trusts printed text) and writes CSV + Markdown.
"""
from __future__ import annotations

import copy
import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from aigc_course.teaching.exercises import EXERCISES, Exercise, exercises_for

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
        label = f"Exercise {exercise.id}: {exercise.title}" if exercise else "Exercise: your code here"
        cell.source = strip_solutions(cell.source, label, where)
        cell.outputs, cell.execution_count = [], None
    return nb


def build_student(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """Write the student version of each notebook into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = _read(path)
        target = out_dir / path.name
        nbformat.write(student_notebook(nb, path.stem), target)
        written.append(target)
    return written


def _read(path: Path) -> nbformat.NotebookNode:
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


# ----------------------------------------------------------------------------- grading

PREAMBLE = r'''
import os as _os, sys as _sys, resource as _resource
_os.environ["MPLBACKEND"] = "Agg"
_os.environ["MPLCONFIGDIR"] = _os.getcwd()
_sys.dont_write_bytecode = True
_resource.setrlimit(_resource.RLIMIT_AS, ({memory}, {memory}))
_AIGC_HOME = _os.path.realpath(_os.getcwd())  # the scratch folder; TMPDIR points here too
_AIGC_ALLOWED = (_AIGC_HOME + _os.sep, "/dev/")
_AIGC_VIOLATIONS = []
_AIGC_WRITE_FLAGS = _os.O_WRONLY | _os.O_RDWR | _os.O_APPEND | _os.O_CREAT | _os.O_TRUNC
_AIGC_PATH_EVENTS = {{"os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.symlink",
                     "os.truncate", "os.chmod", "os.link", "os.chown"}}

def _aigc_guard(event, args, _realpath=_os.path.realpath, _fspath=_os.fspath):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(flags, int) and flags & _AIGC_WRITE_FLAGS) or (
            isinstance(mode, str) and any(c in mode for c in "wax+"))
        if not writing or isinstance(path, int):
            return
    elif event in _AIGC_PATH_EVENTS:
        path = args[0]
        if isinstance(path, int):
            return
    else:
        return
    try:
        real = _realpath(_fspath(path) if not isinstance(path, bytes) else path.decode())
    except Exception:
        return
    if real != _AIGC_HOME and not real.startswith(_AIGC_ALLOWED):
        _AIGC_VIOLATIONS.append(f"{{event}} {{real}}")
        raise PermissionError(f"graded notebooks may only write inside their working directory: {{real}}")

_sys.addaudithook(_aigc_guard)
'''

GRADE_CELL = r'''
import json as _json, signal as _signal
from aigc_course.teaching.exercises import exercises_for as _aigc_exercises

def _aigc_timeout(*_):
    raise TimeoutError("the exercise took longer than {seconds} s")

def _aigc_outcome(function, args):
    """What the learner's function does on the inputs: its tensor, or the exception it raised."""
    import torch
    _signal.alarm({seconds})
    try:
        got = function(*args)
    except BaseException as err:  # includes the alarm's TimeoutError and KeyboardInterrupt
        return {{"raised": type(err).__name__, "message": str(err)[:300]}}
    finally:
        _signal.alarm(0)
    if isinstance(got, torch.Tensor):
        return {{"tensor": got.detach().cpu().double().tolist()}}
    return {{"type": type(got).__name__}}

_signal.signal(_signal.SIGALRM, _aigc_timeout)
_aigc_outcomes = {{}}
for _aigc_e in _aigc_exercises({notebook!r}):
    _aigc_f = globals().get(_aigc_e.function)
    _aigc_outcomes[_aigc_e.id] = (_aigc_outcome(_aigc_f, _aigc_e.case()[0]) if callable(_aigc_f) else
                                  {{"raised": "NameError", "message": f"{{_aigc_e.function}} is not defined"}})
print({token!r}, _json.dumps({{"outcomes": _aigc_outcomes, "violations": _AIGC_VIOLATIONS}}))
'''


@dataclass
class GradeRow:
    """One submission's result: pass/fail per exercise, score, errors, run time."""

    learner: str
    notebook: str
    results: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(self.results.values())

    @property
    def max_score(self) -> int:
        return len(exercises_for(self.notebook)) or len(self.results)


def run_submission(path: Path, cell_timeout: int = 60, memory_mb: int = 8192) -> dict:
    """Execute one submission in a fresh kernel in a scratch folder; return results as a dict.

    Runs in the grader's child process (see ``grade_submission``), so a crash
    here never stops the other submissions.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    name = path.stem
    report = {"results": {}, "errors": []}
    try:
        nb = _read(path)
    except ValueError as err:
        report["errors"].append(str(err))
        return report
    exercises = exercises_for(name)
    if not exercises:
        report["errors"].append(f"{path.name}: no exercises are registered for a notebook called {name!r} "
                                f"(known: {sorted({e.notebook for e in EXERCISES.values()})})")
        return report
    for exercise in exercises:
        if not any(_checked_exercise(c.source, name) is exercise for c in nb.cells if c.cell_type == "code"):
            report["errors"].append(f"check cell for exercise {exercise.id} is missing or was changed")
    token = "AIGC_GRADE_" + secrets.token_hex(8)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PREAMBLE.format(memory=memory_mb * 2**20)))
    nb.cells.append(nbformat.v4.new_code_cell(GRADE_CELL.format(notebook=name, seconds=cell_timeout, token=token)))
    workdir = Path(tempfile.mkdtemp(prefix="aigc-grade-"))
    os.environ["TMPDIR"] = str(workdir)  # this child process only: the kernel's temp files stay inside
    grade_cell = nb.cells[-1]
    client = NotebookClient(
        nb, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True, kernel_name="python3",
        timeout_func=lambda cell: (len(exercises) + 1) * cell_timeout if cell is grade_cell else cell_timeout,
        record_timing=False, resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute(cwd=str(workdir))
    except DeadKernelError:
        report["errors"].append("the kernel died (a crash or os._exit in the notebook)")
    except CellTimeoutError as err:
        report["errors"].append(f"time limit: {err}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for index, cell in enumerate(nb.cells[1:-1], start=0):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "KeyboardInterrupt":  # nbclient interrupts a cell at the time limit
                report["errors"].append(f"cell {index}: stopped at the time limit ({cell_timeout} s per cell)")
            else:
                report["errors"].append(f"cell {index}: {output.get('ename')}: {output.get('evalue', '')[:120]}")
    graded = _parse_grade(nb.cells[-1], token)
    if graded is None:
        report["errors"].append("grading did not finish; all exercises count as failed")
        graded = {"outcomes": {}, "violations": []}
    for exercise in exercises:
        outcome = graded["outcomes"].get(exercise.id, {"raised": "RuntimeError", "message": "not graded"})
        report["results"][exercise.id] = bool(exercise.judge(_rebuild(outcome))[0])
    report["errors"] += [f"blocked: {v}" for v in graded["violations"]]
    return report


def _rebuild(outcome: dict):
    """Turn the kernel's report of a learner's function back into a value ``Exercise.judge`` reads.

    Verdicts are computed here, in the grader's own process, from the learner's
    returned numbers: nothing the notebook prints or patches can change them.
    """
    import torch

    if "tensor" in outcome:
        return torch.tensor(outcome["tensor"], dtype=torch.float64)
    if "raised" in outcome:
        if outcome["raised"] == "NotImplementedError":
            return NotImplementedError(outcome["message"])
        return type(outcome["raised"], (Exception,), {})(outcome["message"])
    return type(outcome.get("type", "object"), (), {})()


def _parse_grade(cell, token: str) -> dict | None:
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    for line in text.splitlines():
        if line.startswith(token + " "):
            return json.loads(line[len(token) + 1:])
    return None


def grade_submission(path: Path, learner: str, cell_timeout: int = 60, notebook_timeout: int = 600,
                     memory_mb: int = 8192) -> GradeRow:
    """Grade one notebook in a child process with a whole-notebook time limit; never raises."""
    row = GradeRow(learner, path.stem)
    start = time.perf_counter()
    command = [sys.executable, "-m", "aigc_course.teaching.grading", str(path), str(cell_timeout), str(memory_mb)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group: the kernel dies with it
    try:
        stdout, stderr = process.communicate(timeout=notebook_timeout)
        report = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
        if report is None:
            row.errors.append(f"grader child failed: {stderr.strip().splitlines()[-1] if stderr.strip() else '?'}")
        else:
            row.results, row.errors = report["results"], report["errors"]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        row.errors.append(f"notebook time limit ({notebook_timeout} s) exceeded")
    except (json.JSONDecodeError, KeyError) as err:
        row.errors.append(f"grader child gave unreadable output ({err})")
    for exercise in exercises_for(row.notebook):
        row.results.setdefault(exercise.id, False)
    row.seconds = time.perf_counter() - start
    return row


def find_submissions(folder: Path) -> list[tuple[str, Path]]:
    """(learner, notebook) pairs: ``folder/LEARNER/*.ipynb`` (learner = folder name) and ``folder/*.ipynb``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    found = [(p.parent.name, p) for p in sorted(folder.glob("*/*.ipynb"))]
    found += [(p.stem, p) for p in sorted(folder.glob("*.ipynb"))]
    return [(learner, p) for learner, p in found if ".ipynb_checkpoints" not in p.parts]


def grade_folder(folder: Path, out: Path, cell_timeout: int = 60, notebook_timeout: int = 600,
                 memory_mb: int = 8192, progress: bool = True) -> list[GradeRow]:
    """Grade every submission in ``folder``; write ``out``.csv and ``out``.md; return the rows."""
    from tqdm.auto import tqdm

    submissions = find_submissions(folder)
    rows = [grade_submission(path, learner, cell_timeout, notebook_timeout, memory_mb)
            for learner, path in tqdm(submissions, desc="grading", unit="notebook", disable=not progress)]
    write_report(rows, out)
    return rows


def write_report(rows: list[GradeRow], out: Path) -> tuple[Path, Path]:
    """Write the score table as ``out``.csv and ``out``.md (one row per submission)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted({i for row in rows for i in row.results}, key=lambda s: [int(x) for x in s.split(".")])
    header = ["learner", "notebook", *[f"exercise {i}" for i in ids], "score", "max", "runtime_s", "errors"]
    table = [[r.learner, r.notebook, *[("pass" if r.results.get(i) else "fail") if i in r.results else ""
                                       for i in ids],
              r.score, r.max_score, f"{r.seconds:.1f}", "; ".join(r.errors)] for r in rows]
    csv_path, md_path = out.with_suffix(".csv"), out.with_suffix(".md")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in table]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


if __name__ == "__main__":  # the child process of grade_submission
    _path, _cell_timeout, _memory = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    try:
        _report = run_submission(_path, _cell_timeout, _memory)
    except Exception as _err:  # report, never crash the grader
        _report = {"results": {}, "errors": [f"{type(_err).__name__}: {_err}"]}
    print(json.dumps(_report))
