"""The Exercise framework itself: hidden inputs, edge cases, and a behaviour-graded exercise in a few lines."""
import torch

from aigc_course.teaching.exercises import Exercise, close


# A behaviour-graded exercise: the learner writes one SGD step of least squares; ``run`` trains with it
# (in the grading process), ``compare`` measures the trained weights on held-out data (in the grader).
def _regression(g):
    w_true = torch.randn(3, generator=g, dtype=torch.float64)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    return w_true, x, x @ w_true


def _train_40_steps(step, args):
    _, x, y = args
    w = torch.zeros(3, dtype=torch.float64)
    for _ in range(40):
        w = step(w, x, y, 0.1)
    return w


def _heldout_error_small(got, expected, args):
    w_true = args[0]
    x = torch.randn(256, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(99))
    return bool(((x @ got - x @ w_true) ** 2).mean() < 1e-3)


def _sgd_reference(w, x, y, lr):  # what the grader trains with to get "expected" (unused by this compare)
    return w - lr * 2 * x.T @ (x @ w - y) / len(y)


SGD = Exercise("9.1", "SGD step", "99_demo", "my_step", "w <- w - lr * gradient of the mean squared error",
               reference=lambda *a: _train_40_steps(_sgd_reference, a), public=lambda: _regression(
                   torch.Generator().manual_seed(0)), hidden=_regression, run=lambda f, a: _train_40_steps(f, a),
               compare=_heldout_error_small)


def test_behaviour_graded_exercise_judges_what_the_step_does():
    right = lambda w, x, y, lr: w - lr * 2 * x.T @ (x @ w - y) / len(y)  # noqa: E731
    wrong_sign = lambda w, x, y, lr: w + lr * 2 * x.T @ (x @ w - y) / len(y)  # noqa: E731
    too_timid = lambda w, x, y, lr: w - 0.01 * lr * x.T @ (x @ w - y) / len(y)  # noqa: E731
    assert SGD.evaluate(right) == (True, "Exercise 9.1 SGD step: correct")
    assert not SGD.evaluate(wrong_sign)[0] and not SGD.evaluate(too_timid)[0]
    for args in SGD.grading_inputs(seed=3):  # the grader's way: run where the learner's code runs, judge here
        assert SGD.judge(SGD.run(right, args), SGD.reference(*args), args)[0]
        assert not SGD.judge(SGD.run(too_timid, args), SGD.reference(*args), args)[0]


def test_grading_inputs_are_public_then_edges_then_hidden_draws():
    ex = Exercise("9.2", "double", "99_demo", "my_double", "twice x", reference=lambda x: 2 * x,
                  public=lambda: (torch.ones(2),), hidden=lambda g: (torch.randn(3, generator=g),),
                  edge=(lambda: (torch.zeros(0),),))
    inputs = ex.grading_inputs(seed=1, draws=2)
    assert [tuple(a[0].shape) for a in inputs] == [(2,), (0,), (3,), (3,)]
    assert ex.references() == (f"{__name__}:<lambda>",)


def test_default_compare_tolerances_and_infinities():
    inf = float("-inf")
    assert close(torch.tensor([1.0, inf]), torch.tensor([1.0 + 1e-6, inf]))
    assert not close(torch.tensor([1.0, inf]), torch.tensor([1.0, 0.0]))
    assert not close(torch.tensor([1.0]), torch.tensor([1.001]))


def test_each_lessons_own_solutions_pass_the_hidden_inputs_and_its_stubs_fail():
    """The notebooks' solutions (code written apart from the package) agree with the references on
    the public case, the edge cases and hidden draws of three seeds; the learner versions' stubs fail."""
    from pathlib import Path

    import nbformat
    import torch.nn.functional as F

    from aigc_course.teaching import student
    from aigc_course.teaching.exercises import EXERCISES

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    failures = []
    for stem in sorted({e.notebook for e in EXERCISES.values()}):
        lesson = nbformat.read(notebooks / f"{stem}.ipynb", as_version=4)
        books = []  # (the functions a notebook defines, whether they should pass)
        for book, should_pass in ((lesson, True), (student.student_notebook(lesson, stem), False)):
            namespace = {"torch": torch, "F": F}
            for cell in book.cells:
                if cell.cell_type == "code" and cell.source.lstrip().startswith("def my_"):
                    exec(cell.source, namespace)
            books.append((namespace, should_pass))
        for exercise in (e for e in EXERCISES.values() if e.notebook == stem):
            for seed in range(3):
                for k, args in enumerate(exercise.grading_inputs(seed)):
                    expected = None  # computed once, after the solution ran (2.4's trains a GAN: 5 s)
                    for namespace, should_pass in books:
                        try:
                            got = exercise.run(namespace[exercise.function], args)
                        except Exception as err:
                            got = err
                        if expected is None:
                            expected = exercise.reference(*args)
                        ok, line = exercise.judge(got, expected, args)
                        if ok != should_pass:
                            failures.append(f"{exercise.id} seed {seed} case {k}: {line}")
    assert failures == []


def test_the_package_re_exports_every_lessons_checks_and_public_names():
    """Notebooks import from ``aigc_course.teaching.exercises``: each lesson module's public names are there too."""
    from aigc_course.teaching import exercises

    for lesson in exercises.LESSONS:
        public = {n for n, v in vars(lesson).items() if not n.startswith("_") and getattr(v, "__module__", None)
                  == lesson.__name__ or n.isupper() and n != "EXERCISES" and not n.startswith("_")}
        for name in public:
            assert getattr(exercises, name) is getattr(lesson, name) and name in exercises.__all__, (lesson, name)
        assert all(exercises.EXERCISES[i] is e for i, e in lesson.EXERCISES.items())
    assert len(exercises.EXERCISES) == sum(len(lesson.EXERCISES) for lesson in exercises.LESSONS) == 50


def test_a_question_reads_one_letter_and_keeps_its_answer_in_a_stubbed_reference():
    """``question``: a quiz needs its letters; the right answer is a module-level reference (stubbed while grading)."""
    import pytest

    from aigc_course.teaching.exercises import EXERCISES, is_quiz, letter, question

    with pytest.raises(ValueError, match="needs its letters"):
        question("9.9", "demo", "09_x", "a hint", lambda: letter("A"))
    quiz, prediction = EXERCISES["0.1"], EXERCISES["5.5"]
    assert is_quiz(quiz) and quiz.function == "my_answer_0_1" and not is_quiz(prediction)
    assert quiz.references() == ("aigc_course.teaching.exercises.welcome:_answer_0_1",)
    assert quiz.run(lambda: " b ", ()).tolist() == [66.0] == letter("B").tolist()   # ord("B") = 66
    assert prediction.run(lambda: 24576, ()).tolist() == [24576.0]
