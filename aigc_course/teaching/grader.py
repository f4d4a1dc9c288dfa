"""Grade a folder of submitted notebooks: scores come only from what the grader computes itself.

For each submission, ``grade_submission``

1. reads the notebook (an unreadable file scores 0, named in the report);
2. checks the learner's own cells statically for reuse of the references
   (:mod:`aigc_course.teaching.reuse`);
3. runs all its code cells in an isolated worker (:mod:`aigc_course.teaching.sandbox`,
   :mod:`aigc_course.teaching.worker`) under time, memory, process, file and
   output limits, with every graded reference replaced by a stub;
4. after the cells ran, sends the worker hidden inputs for each exercise,
   drawn from a seed made here for this grading run (the submission never sees
   it), and receives the learner's outputs as plain arrays (JSON + raw bytes);
5. judges those arrays here, against the references computed in this process.

Nothing a submission prints, patches or writes in its own process changes a
score; a malformed or oversized reply fails the exercises it concerns. The
grader's own memory is bounded by ``output_cap`` + ``message_cap`` per parallel
job, whatever a submission prints. ``grade_folder`` grades ``jobs`` submissions
at a time and writes ``report.csv`` and ``report.md``.
"""
from __future__ import annotations

import csv
import os
import queue
import secrets
import selectors
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from aigc_course.teaching import reuse, sandbox, wire
from aigc_course.teaching.exercises import EXERCISES, Exercise, exercises_for
from aigc_course.teaching.student import _checked_exercise, read_notebook, student_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
# ast.parse in two threads at once can fail on CPython 3.11 with "SystemError: AST constructor recursion
# depth mismatch" (the AST builder's depth counter is shared; python/cpython#106905): parse one at a time.
AST_LOCK = threading.Lock()
STARTUP_SECONDS = 90  # the worker's Python + torch import before cell 0, on a loaded 2-core machine


@dataclass(frozen=True)
class Settings:
    """Limits of one grading run (see ``sandbox.Limits`` for what the worker may use)."""

    cell_timeout: int = 60          # seconds per cell and per call of a graded function
    notebook_timeout: int = 600     # seconds per submission, start to finish
    memory_mb: int = 8192           # address space of each of the submission's processes
    cell_output: int = 64 * 1024    # characters of output kept per cell (by the worker)
    output_cap: int = 1 << 20       # bytes of output per notebook the grader keeps; the rest is counted, dropped
    message_cap: int = 16 << 20     # longest message the grader accepts from the worker
    draws: int = 3                  # hidden draws per exercise, besides the public and edge cases


@dataclass
class GradeRow:
    """One submission's result: pass/fail per exercise, score, what went wrong, run time."""

    learner: str
    notebook: str
    results: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output_bytes: int = 0   # everything the submission wrote to stdout/stderr (kept or not)

    @property
    def score(self) -> int:
        return sum(self.results.values())

    @property
    def max_score(self) -> int:
        return len(exercises_for(self.notebook)) or len(self.results)


@dataclass
class Run:
    """What every submission of one grading run shares: the seed's inputs, their expected outputs, the stubs."""

    seed: int
    stub_root: Path
    settings: Settings
    inputs: dict[str, list[tuple]] = field(default_factory=dict)
    expected: dict[str, list] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cases(self, exercise: Exercise) -> tuple[list[tuple], list]:
        with self.lock:
            if exercise.id not in self.inputs:
                index = list(EXERCISES).index(exercise.id)
                self.inputs[exercise.id] = exercise.grading_inputs(self.seed + 7919 * index, self.settings.draws)
                self.expected[exercise.id] = [exercise.reference(*args) for args in self.inputs[exercise.id]]
            return self.inputs[exercise.id], self.expected[exercise.id]


def all_references() -> set[str]:
    return {ref for exercise in EXERCISES.values() for ref in exercise.references()}


# ----------------------------------------------------------------------------- one submission


def _lesson_cells(name: str) -> set[str]:
    """Normalised sources of the lesson's code cells, in the teacher's and the learner's version."""
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    if not path.exists():
        return set()
    lesson = read_notebook(path)
    cells = lesson.cells + student_notebook(lesson, name).cells
    return {"".join(c.source.split()) for c in cells if c.cell_type == "code"}


def grade_submission(path: Path, learner: str, run: Run, slot: int = 0) -> GradeRow:
    """Grade one notebook; never raises because of the submission."""
    row = GradeRow(learner, path.stem)
    start = time.perf_counter()
    try:
        _grade(path, row, run, slot)
    finally:
        for exercise in exercises_for(row.notebook):
            row.results.setdefault(exercise.id, False)
        row.seconds = time.perf_counter() - start
    return row


def _grade(path: Path, row: GradeRow, run: Run, slot: int) -> None:
    name = path.stem
    try:
        if path.stat().st_size > 64 << 20:
            raise ValueError(f"{path} is larger than 64 MB")
        nb = read_notebook(path)
    except (ValueError, OSError) as err:
        row.errors.append(str(err))
        return
    exercises = exercises_for(name)
    if not exercises:
        row.errors.append(f"{path.name}: no exercises are registered for a notebook called {name!r} "
                          f"(known: {sorted({e.notebook for e in EXERCISES.values()})})")
        return
    code = [c.source for c in nb.cells if c.cell_type == "code" and isinstance(c.source, str)]
    for exercise in exercises:
        if not any(_checked_exercise(source, name) is exercise for source in code):
            row.errors.append(f"check cell for exercise {exercise.id} is missing or was changed")
    lesson = _lesson_cells(name)
    with AST_LOCK:
        reused, dynamic = reuse.scan([s for s in code if "".join(s.split()) not in lesson], exercises)
    calls = []
    for exercise in exercises:
        inputs, _ = run.cases(exercise)
        calls.append({"id": exercise.id, "function": exercise.function,
                      "inputs": [wire.encode(args) for args in inputs]})
    results = _run_worker(code, calls, row, run, slot)
    if dynamic:
        row.errors.append(f"all exercises 0: {dynamic}")
    for exercise in exercises:
        if dynamic:
            row.results[exercise.id] = False
        elif exercise.id in reused:
            row.results[exercise.id] = False
            row.errors.append(f"{exercise.id}: reuse, 0 points: {reused[exercise.id]}")
        else:
            ok, why = _judge(exercise, results.get(exercise.id) if results else None, run)
            row.results[exercise.id] = ok
            if why:
                row.errors.append(f"{exercise.id}: {why}")


def _judge(exercise: Exercise, outcomes, run: Run) -> tuple[bool, str | None]:
    """Pass only if every case's reply is well formed and right; otherwise say why (first failing case)."""
    inputs, expected = run.cases(exercise)
    if outcomes is None:
        return False, "not graded (the worker gave no results)"
    if not isinstance(outcomes, list) or len(outcomes) != len(inputs):
        return False, "invalid reply from the worker (wrong number of results)"
    for k, (args, want, outcome) in enumerate(zip(inputs, expected, outcomes)):
        case = "public case" if k == 0 else f"grading case {k}"
        if not isinstance(outcome, dict):
            return False, f"{case}: invalid reply"
        if "raised" in outcome:
            message = str(outcome.get("message", ""))[:300]
            if sandbox.STUB_MESSAGE in message:
                return False, f"reuse, 0 points: {exercise.function} called the package's reference ({message})"
            name = str(outcome["raised"])[:40]
            got = NotImplementedError(message) if name == "NotImplementedError" else \
                type(name if name.isidentifier() else "Exception", (Exception,), {})(message)
        elif "value" in outcome:
            try:
                got = wire.decode(outcome["value"])
            except wire.WireError as err:
                return False, f"{case}: invalid reply ({err})"
            if not hasattr(got, "shape"):
                return False, f"{case}: invalid reply (not a tensor)"
            if got.dtype.is_floating_point and got.isnan().any():
                return False, f"{case}: the result contains NaN"
        else:
            got = type(str(outcome.get("type", "object"))[:40], (), {})()
        ok, line = exercise.judge(got, want, args)
        if not ok:
            return False, f"{case}: {line}"
    return True, None


def _run_worker(cells: list[str], calls: list[dict], row: GradeRow, run: Run, slot: int) -> dict | None:
    """Run the cells in the sandbox, then the calls; return the worker's results (or None), reporting problems."""
    s = run.settings
    limits = sandbox.Limits(memory_mb=s.memory_mb, cpu_seconds=s.notebook_timeout + 30,
                            cell_timeout=s.cell_timeout, cell_output=s.cell_output)
    scratch = Path(tempfile.mkdtemp(prefix="aigc-grade-"))
    to_worker, from_grader = os.pipe()[::-1]   # (write end, read end) for the hidden inputs
    from_worker, to_grader = os.pipe()
    try:
        process = sandbox.start(cells, scratch, run.stub_root, _data_dir(), limits, slot,
                                fd_in=from_grader, fd_out=to_grader)
    except OSError as err:
        row.errors.append(f"could not start the grading process: {err}")
        for fd in (to_worker, from_grader, from_worker, to_grader):
            os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    os.close(from_grader)
    os.close(to_grader)
    state = {"cell": None, "ready": False, "results": None, "cut": {}, "cell_errors": [], "bad": 0,
             "cells": len(cells), "done": -1}
    now = time.monotonic()
    deadline, phase = now + s.notebook_timeout, now + s.cell_timeout + STARTUP_SECONDS
    output, dropped, buffer = bytearray(), 0, bytearray()
    selector = selectors.DefaultSelector()
    selector.register(process.stdout.fileno(), selectors.EVENT_READ, "output")
    selector.register(from_worker, selectors.EVENT_READ, "messages")
    stopped = None
    while selector.get_map() and state["results"] is None:
        wait = min(deadline, phase) - time.monotonic()
        if wait <= 0:
            where = f"cell {state['cell']}" if not state["ready"] else "the graded functions"
            stopped = (f"notebook time limit ({s.notebook_timeout} s)" if deadline <= phase else
                       f"time limit: {where} ran past {s.cell_timeout} s and could not be interrupted")
            break
        for key, _ in selector.select(timeout=min(wait, 5)):
            data = os.read(key.fd, 1 << 16)
            if not data:
                selector.unregister(key.fd)
            elif key.data == "output":
                keep = max(s.output_cap - len(output), 0)
                output += data[:keep]
                dropped += len(data) - min(len(data), keep)
            else:
                buffer += data
                if b"\n" not in data:
                    if len(buffer) > s.message_cap:
                        stopped = f"the grading process sent a message over {s.message_cap >> 20} MB"
                        break
                    continue
                *lines, rest = bytes(buffer).split(b"\n")
                buffer = bytearray(rest)
                for line in lines:
                    phase = _message(line, state, calls, to_worker, phase, s)
        if stopped:
            break
    _end(process)
    selector.close()
    os.close(from_worker)
    if not state["ready"]:
        os.close(to_worker)  # never handed to _send
    shutil.rmtree(scratch, ignore_errors=True)
    row.output_bytes = len(output) + dropped
    stubbed = [e.split(":")[0] for e in state["cell_errors"] if sandbox.STUB_MESSAGE in e]
    row.errors += [e for e in state["cell_errors"] if sandbox.STUB_MESSAGE not in e]
    if stubbed:  # lesson cells that use a graded reference through the package (expected; no effect on the score)
        row.errors.append(f"{', '.join(stubbed)}: stopped at a graded reference (unavailable while grading)")
    if state["cut"]:
        row.errors.append("output cut: " + ", ".join(f"cell {i}: {n} characters over the "
                                                      f"{s.cell_output}-character limit" for i, n in
                                                      sorted(state["cut"].items())))
    if dropped:
        row.errors.append(f"output cut: {dropped} bytes over the {s.output_cap}-byte limit per notebook")
    if state["bad"]:
        row.errors.append(f"{state['bad']} unreadable message(s) from the grading process ignored")
    if stopped:
        row.errors.append(stopped)
    elif state["results"] is None:
        text = output.decode("utf-8", "replace")
        setup = [ln for ln in text.splitlines() if ln.startswith("sandbox setup failed")]
        where = f"in cell {state['cell']}" if not state["ready"] else "while its functions ran"
        row.errors.append(setup[0] if setup else f"the submission's process ended {where} "
                          f"(exit code {process.returncode}); exercises not graded count as failed")
    return state["results"]


def _message(line: bytes, state: dict, calls: list[dict], to_worker: int, phase: float, s: Settings) -> float:
    """Act on one message from the worker; return the new phase deadline."""
    try:
        message = wire.loads(line)
    except wire.WireError:
        state["bad"] += 1
        return phase
    kind, now = message.get("type"), time.monotonic()
    if kind == "cell" and not state["ready"] and isinstance(message.get("index"), int):
        state["cell"] = message["index"]
        return now + s.cell_timeout + 10
    if kind == "cell_done" and not state["ready"] and isinstance(message.get("index"), int):
        if isinstance(message.get("error"), str):
            state["cell_errors"].append(f"cell {message['index']}: {message['error'][:160]}")
        if isinstance(message.get("cut"), int) and message["cut"] > 0:
            state["cut"][message["index"]] = message["cut"]
        state["done"] = message["index"]
        return now + s.cell_timeout + 10
    if kind == "ready" and not state["ready"] and state["done"] == state["cells"] - 1:  # after the last cell
        state["ready"] = True
        threading.Thread(target=_send, args=(to_worker, wire.dumps({"calls": calls})), daemon=True).start()
        return now + s.cell_timeout * sum(len(c["inputs"]) for c in calls) + 10
    if kind == "results" and state["ready"] and isinstance(message.get("results"), dict):
        state["results"] = message["results"]
        return phase
    state["bad"] += 1
    return phase


def _send(fd: int, data: bytes) -> None:
    """Write the hidden inputs (in a thread: a worker that never reads cannot block the grader)."""
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except OSError:
        pass  # the worker ended first


def _end(process) -> None:
    """End the worker and everything it started (its process group; with namespaces, the whole PID namespace)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    process.stdout.close()


def _data_dir() -> Path | None:
    from aigc_course.core.assets import data_dir

    return data_dir()


# ----------------------------------------------------------------------------- a folder


def find_submissions(folder: Path) -> list[tuple[str, Path]]:
    """(learner, notebook) pairs: ``folder/LEARNER/*.ipynb`` (learner = folder name) and ``folder/*.ipynb``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    found = [(p.parent.name, p) for p in sorted(folder.glob("*/*.ipynb"))]
    found += [(p.stem, p) for p in sorted(folder.glob("*.ipynb"))]
    return [(learner, p) for learner, p in found if ".ipynb_checkpoints" not in p.parts]


@contextmanager
def grading_run(settings: Settings, seed: int | None = None) -> Iterator[Run]:
    """One grading run: its seed (drawn fresh when None) and the stubbed package, removed afterwards."""
    stub_root = Path(tempfile.mkdtemp(prefix="aigc-stubs-"))
    try:
        with AST_LOCK:
            sandbox.build_stub_package(all_references(), stub_root)
        for path in stub_root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        stub_root.chmod(0o755)
        yield Run(seed if seed is not None else secrets.randbits(62), stub_root, settings)
    finally:
        shutil.rmtree(stub_root, ignore_errors=True)


def grade_folder(folder: Path, out: Path, cell_timeout: int = 60, notebook_timeout: int = 600,
                 memory_mb: int = 8192, progress: bool = True, jobs: int = 1, seed: int | None = None,
                 settings: Settings | None = None) -> list[GradeRow]:
    """Grade every submission in ``folder`` (``jobs`` at a time); write ``out``.csv and ``out``.md; return the rows.

    ``seed`` (drawn fresh when None) fixes the hidden inputs of this run; it is
    never passed to a submission.
    """
    from tqdm.auto import tqdm

    settings = settings or Settings(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                                    memory_mb=memory_mb)
    submissions = find_submissions(Path(folder))
    with grading_run(settings, seed) as run:
        slots: queue.Queue[int] = queue.Queue()
        for slot in range(max(jobs, 1)):
            slots.put(slot)

        def one(item: tuple[str, Path]) -> GradeRow:
            slot = slots.get()
            try:
                return grade_submission(item[1], item[0], run, slot)
            finally:
                slots.put(slot)

        with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            rows = list(tqdm(pool.map(one, submissions), total=len(submissions), desc="grading",
                             unit="notebook", disable=not progress))
    write_report(rows, Path(out), footer=f"Isolation: {sandbox.jail_mode()}; hidden inputs from a seed "
                                         f"drawn for this run; {settings.draws} hidden draws per exercise.")
    return rows


def write_report(rows: list[GradeRow], out: Path, footer: str = "") -> tuple[Path, Path]:
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
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in table]
    md_path.write_text("\n".join(lines) + "\n" + (f"\n{footer}\n" if footer else ""))
    return csv_path, md_path
