"""nbgrader end to end on the exercises of lesson 01: its scores agree with the course's own grader.

One course directory (``build_course``), ``generate_assignment``, ``release_assignment``; three
learners fetch it, fill the solution cells and submit through nbgrader's exchange: ann (right
answers), ben (wrong answers) and mallory (hostile). ``collect``, then ``autograde`` twice:

* judge ``"course"`` (the course's configuration): the gradebook must equal the course grader's
  scores on the same notebooks (``grade_folder``, run independently), exercise by exercise;
* judge ``"kernel"`` (nbgrader's own in-kernel grading, for the record), mallory only: its kernel
  runs the teacher's solution read from ``source/``, patches the check and writes to
  ``gradebook.db``, so nbgrader's own grading gives points nobody earned, to mallory and to ben.
  (Right and wrong answers agree in that mode too: a check raises under nbgrader's autograde
  when the answer is wrong, ``tests/test_exercises.py``.)

Then ``generate_feedback``. Everything runs through nbgrader's Python API in this process (its
CLI costs several seconds per command just to start here).
"""
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader")

from aigc_course.teaching import grader  # noqa: E402
from aigc_course.teaching.nbgrader_course import build_course, configure  # noqa: E402
from lesson01_answers import IDS, RIGHT, SIGNATURES, WRONG, indented, vae_step  # noqa: E402

ASSIGNMENT = "01_vae"
SEED = 20261201  # the same hidden inputs on both sides, so even a borderline answer gets one verdict
DRAWS = 1  # hidden draws per exercise (the default 3 triples 1.3's training runs), the same on both sides
TIMEOUT = 20  # seconds per cell / per graded call; mallory's endless loop costs this once per grading
# Cells here are `def f(...):` + body, and 1.3 returns its loss as the nbgrader test cell expects.
RIGHT = indented({**RIGHT, "my_vae_step": vae_step("optimizer.zero_grad()", returns=True)})
WRONG = indented({**WRONG, "my_vae_step": vae_step("loss = -loss  # ascends the loss", returns=True)})
# Every answer of mallory is wrong; each solution cell tries something else.
FIND_COURSE = ("import pathlib\nhere = pathlib.Path.cwd().resolve()\n"
               "course = next((p for p in (here, *here.parents) if (p / 'gradebook.db').exists()), None)\n")
HOSTILE = {
    # 1.1: read the teacher's solution from source/ and run it
    "my_reparameterize": "    return mu\n" + FIND_COURSE + (
        "if course is not None:\n"
        "    import json\n"
        "    teacher = json.loads((course / 'source' / '01_vae' / '01_vae.ipynb').read_text())\n"
        "    exec(next(''.join(c['source']) for c in teacher['cells'] if 'def my_reparameterize' in ''.join(c['source'])))\n"),
    # 1.2: make every check print 'correct' (and never raise)
    "my_kl": "    return mu\nimport aigc_course.teaching.exercises as ex\n"
             "ex.Exercise.check = lambda self, answer: print(f'Exercise {self.id} {self.title}: correct')",
    # 1.3: 10 MB of output, two million lines
    "my_vae_step": "    return torch.tensor(0.0)\nimport sys\nsys.stdout.write('spam\\n' * 2_000_000)",
    # 1.4: give every grade in the gradebook full marks by hand (a manual score overrides the autograder's)
    "my_answer_1_4": "    return 'A'\n" + FIND_COURSE + (
        "if course is not None:\n"
        "    import sqlite3\n"
        "    db = sqlite3.connect(course / 'gradebook.db')\n"
        "    db.execute('UPDATE grade SET manual_score = 1'); db.commit()\n"),
    # 1.5: never return
    "my_answer_1_5": "    while True:\n        pass",
}


def fill(released: Path, bodies: dict[str, str], out: Path) -> None:
    """A learner's work: each solution cell's `raise NotImplementedError()` replaced by ``bodies``."""
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            name = next(n for n in bodies if f"def {n}(" in cell.source)
            cell.source = f"import torch\n\ndef {name}({SIGNATURES[name]}):\n{bodies[name]}"
    nbformat.write(nb, out)


def api_for(root: Path, judge: str):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    c = Config()
    configure(c, root, judge=judge, cell_timeout=TIMEOUT, seed=SEED)
    c.Exchange.cache = str(root / "cache")
    c.CourseJudge.slot = 7  # the independent course-grader run uses slot 0
    c.CourseJudge.draws = DRAWS
    return NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)


def as_learner(api, app_name: str, student: str, home: Path):
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=api.config, assignment_id=ASSIGNMENT, student_id=student)
    app = getattr(api.exchange, app_name)(coursedir=coursedir, authenticator=api.authenticator, config=api.config)
    app.assignment_dir = str(home)
    app.start()


def gradebook_scores(api) -> dict[str, dict[str, float]]:
    """{student: {exercise id: points}} from nbgrader's gradebook (its ``score``: manual if set, else auto)."""
    scores = {}
    with api.gradebook as gb:
        for student in ("ann", "ben", "mallory"):
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            scores[student] = {g.name.split("_check")[0][2:].replace("_", "."): g.score
                               for g in nb.grades if g.name.endswith("_check")}
    return scores


def check(result: dict, what: str) -> None:
    assert result["success"], f"{what}: {result.get('error')}\n{result.get('log', '')[-3000:]}"


@pytest.mark.skipif(sys.platform == "win32", reason="nbgrader's exchange needs a POSIX file system")
def test_nbgrader_and_the_course_grader_agree(tmp_path, monkeypatch):
    timings = {}
    start = time.perf_counter()
    course = tmp_path / "course"
    build_course(course, [ASSIGNMENT])
    monkeypatch.chdir(course)
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from the same environment
    monkeypatch.setenv("PATH", bin_dir + ":" + __import__("os").environ.get("PATH", ""))
    (course / "exchange").mkdir()
    (course / "exchange").chmod(0o777)  # nbgrader's exchange is shared by every learner
    api = api_for(course, "course")
    check(api.generate_assignment(ASSIGNMENT), "generate_assignment")
    released = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    text = released.read_text()
    assert "BEGIN SOLUTION" not in text and "torch.exp(0.5 * logvar) * eps" not in text
    check(api.release_assignment(ASSIGNMENT), "release_assignment")

    learners = {"ann": RIGHT, "ben": WRONG, "mallory": HOSTILE}
    for student, bodies in learners.items():
        home = tmp_path / "home" / student
        home.mkdir(parents=True)
        as_learner(api, "FetchAssignment", student, home)
        fetched = home / "aigc" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        fill(fetched, bodies, fetched)
        as_learner(api, "Submit", student, home)
    check(api.collect(ASSIGNMENT), "collect")
    submitted = {s: course / "submitted" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb" for s in learners}
    assert all(p.exists() for p in submitted.values()), sorted(course.rglob("*.ipynb"))
    timings["build, release, fetch, submit, collect"] = time.perf_counter() - start

    # The course's own grader on the same three notebooks, in a thread (it waits mostly on its sandbox).
    folder = tmp_path / "for_grader"
    for student, path in submitted.items():
        (folder / student).mkdir(parents=True)
        shutil.copy(path, folder / student / path.name)
    rows = {}

    def course_grader():
        t0 = time.perf_counter()
        settings = grader.Settings(cell_timeout=TIMEOUT, notebook_timeout=300, draws=DRAWS)
        for row in grader.grade_folder(folder, tmp_path / "report", settings=settings, progress=False, seed=SEED):
            rows[row.learner] = row
        timings["course grader (3 learners)"] = time.perf_counter() - t0
        timings.update({f"course grader: {r.learner}": r.seconds for r in rows.values()})

    thread = threading.Thread(target=course_grader)
    thread.start()
    t0 = time.perf_counter()
    for student in learners:
        check(api.autograde(ASSIGNMENT, student), f"autograde {student} (judge: course)")
    timings["nbgrader autograde, judge course (3 learners)"] = time.perf_counter() - t0
    judged = gradebook_scores(api)
    t0 = time.perf_counter()
    check(api.generate_feedback(ASSIGNMENT), "generate_feedback")
    timings["nbgrader generate_feedback (3 learners)"] = time.perf_counter() - t0
    thread.join(timeout=600)
    assert set(rows) == set(learners), rows

    # 1) The course grader's own results (what is fair) ...
    expected = {"ann": dict.fromkeys(IDS, True), "ben": dict.fromkeys(IDS, False),
                "mallory": dict.fromkeys(IDS, False)}
    assert {s: r.results for s, r in rows.items()} == expected, {s: r.errors for s, r in rows.items()}
    assert any("all exercises 0" in e and "exec" in e for e in rows["mallory"].errors), rows["mallory"].errors
    # 2) ... and nbgrader's gradebook with the course judge: the same, exercise by exercise.
    assert judged == {s: {i: float(ok) for i, ok in r.results.items()} for s, r in rows.items()}
    # mallory's code never ran where it could reach the gradebook: no manual scores anywhere
    with api.gradebook as gb:
        assert [g.manual_score for g in gb.db.query(__import__("nbgrader.api", fromlist=["Grade"]).Grade)
                if g.manual_score is not None] == []
    feedback = {s: (course / "feedback" / s / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text() for s in learners}
    assert "Exercise 1.2 KL divergence: correct (course grader, hidden inputs)" in feedback["ann"]
    assert "Exercise 1.2 KL divergence: not yet (course grader)" in feedback["ben"]
    assert "expected shape (5,)" in feedback["ben"]
    assert "Score: 5.0 / 5.0" in feedback["ann"] or "5.0 / 5.0" in feedback["ann"]

    # 3) nbgrader's own in-kernel grading, for the record: mallory's submission autograded again, now in a
    # Jupyter kernel (ann's and ben's grades stay as the course judge gave them). Its patched check passes
    # 1.2 to 1.5 and it runs the teacher's 1.1 from source/; its gradebook write gives every grade stored so
    # far (ann's, ben's and its own) a manual score of 1, and a manual score overrides the autograder's.
    api = api_for(course, "kernel")
    t0 = time.perf_counter()
    check(api.autograde(ASSIGNMENT, "mallory"), "autograde mallory (judge: kernel)")
    timings["nbgrader autograde, judge kernel (mallory)"] = time.perf_counter() - t0
    kernel = gradebook_scores(api)
    assert kernel == {s: dict.fromkeys(IDS, 1.0) for s in learners}, kernel
    with api.gradebook as gb:
        auto = {g.name: g.auto_score for g in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "mallory").grades
                if g.name.endswith("_check")}
    assert auto == {f"ex1_{k}_check": 1.0 for k in range(1, 6)}  # even without the gradebook write
    autograded = (course / "autograded" / "mallory" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "... Output truncated ..." in autograded and len(autograded) < 100_000  # LimitOutput: 200 lines kept
    timings["total"] = time.perf_counter() - start
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=1))
    print("\nnbgrader pipeline timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))


# ------------------------------------------------------------------ the course directory, without running nbgrader

LESSONS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_exercise_sheet_of_each_lesson(lesson, tmp_path):
    """Every exercise of the lesson, in lesson order: statement, solution cell, check cell (1 point)."""
    source = build_course(tmp_path, [lesson])[0]
    sheet = nbformat.read(source, as_version=4)
    meta = [c.metadata["nbgrader"] for c in sheet.cells if "nbgrader" in c.metadata]
    lesson_nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / f"{lesson}.ipynb", as_version=4)
    in_lesson = [c.metadata["nbgrader"]["grade_id"] for c in lesson_nb.cells if "nbgrader" in c.metadata]
    assert [m["grade_id"] for m in meta] == in_lesson and len(in_lesson) >= 6  # >= 3 exercises, 2 cells each
    ids = {g.split("_solution")[0] for g in in_lesson if g.endswith("_solution")}
    assert all(m["points"] == 1 for m in meta if m["grade"])
    code = [c.source for c in sheet.cells if c.cell_type == "code"]
    assert all("### BEGIN HINT" not in s for s in code)
    assert sum(s.count("### BEGIN SOLUTION") for s in code) == len(ids)
    imports = code[0].splitlines()
    assert imports and all(line.startswith(("import ", "from ")) for line in imports)
    assert "import matplotlib.pyplot as plt" not in imports  # only what the exercise cells use
    assert len({c.id for c in sheet.cells}) == len(sheet.cells)
    assert nbformat.validate(sheet) is None


def test_full_lesson_assignment(tmp_path):
    source = build_course(tmp_path, ["01_vae"], full=True)[0]
    lesson = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "01_vae.ipynb", as_version=4)
    full = nbformat.read(source, as_version=4)
    assert [c.source for c in full.cells] == [c.source for c in lesson.cells]
    assert [c.metadata.get("nbgrader") for c in full.cells] == [c.metadata.get("nbgrader") for c in lesson.cells]
    assert "judge=os.environ.get(\"AIGC_NBGRADER_JUDGE\", \"course\")" in (tmp_path / "nbgrader_config.py").read_text()


def test_course_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lesson '99_x': use a notebook path or one of 00_welcome"):
        build_course(tmp_path, ["99_x"])
    with pytest.raises(ValueError, match="course id 'my course'"):
        build_course(tmp_path, ["01_vae"], course_id="my course")
    plain = tmp_path / "08_notes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), plain)
    with pytest.raises(ValueError, match="08_notes: no exercises found"):
        build_course(tmp_path, [plain])
    from traitlets.config import Config
    with pytest.raises(ValueError, match="judge 'pytest': use one of course, kernel"):
        configure(Config(), tmp_path, judge="pytest")


def test_configure_swaps_only_the_execute_step(tmp_path):
    from nbgrader.converters.autograde import Autograde
    from traitlets.config import Config

    kernel, course = Config(), Config()
    configure(kernel, tmp_path, judge="kernel")
    configure(course, tmp_path, judge="course", seed=5)
    assert "autograde_preprocessors" not in kernel.Autograde  # nbgrader's own steps
    names = [p if isinstance(p, str) else p.__name__ for p in course.Autograde.autograde_preprocessors]
    stock = [p.__name__ for p in Autograde.class_traits()["autograde_preprocessors"].default()]
    assert names == ["aigc_course.teaching.nbgrader_judge.CourseJudge" if n == "Execute" else n for n in stock]
    assert course.CourseJudge.seed == 5 and course.CourseDirectory.db_url == f"sqlite:///{tmp_path}/gradebook.db"
