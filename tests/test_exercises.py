import torch

from aigc_course import exercises


def _first_line(capsys):
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    return out[0]


def test_correct_answers(capsys):
    exercises.check_reparameterize(lambda mu, logvar, eps: mu + torch.exp(0.5 * logvar) * eps)
    assert _first_line(capsys) == "Exercise 1.1 reparameterisation: correct"
    exercises.check_kl(lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1))
    assert _first_line(capsys) == "Exercise 1.2 KL divergence: correct"


def test_wrong_answers_get_a_hint_not_a_traceback(capsys):
    exercises.check_reparameterize(lambda mu, logvar, eps: mu + torch.exp(logvar) * eps)
    assert "not yet" in _first_line(capsys)
    exercises.check_kl(lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv))  # forgot the sum
    assert "expected shape (5,)" in _first_line(capsys)


def test_unfinished_and_crashing_answers(capsys):
    def unfinished(*args):
        raise NotImplementedError
    exercises.check_kl(unfinished)
    assert "not done yet" in _first_line(capsys)
    exercises.check_kl(lambda mu, lv: mu @ lv)
    assert "your code raised RuntimeError" in _first_line(capsys)
    exercises.check_kl(lambda mu, lv: [1.0])
    assert "return a torch.Tensor" in _first_line(capsys)


def test_checks_return_nothing_so_only_the_verdict_is_shown(capsys):
    assert exercises.check_kl(lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1)) is None
    assert exercises.verdict_line("9.9", "demo", False, "a hint") == "Exercise 9.9 demo: not yet - a hint"


def test_evaluate_returns_the_verdict_without_printing(capsys):
    ok, line = exercises.EXERCISES["1.1"].evaluate(lambda mu, logvar, eps: mu)
    assert not ok and line.startswith("Exercise 1.1 reparameterisation: not yet")
    assert capsys.readouterr().out == ""
    assert [e.function for e in exercises.exercises_for("01_vae")] == ["my_reparameterize", "my_kl"]


def test_wrong_answer_raises_under_nbgrader_autograde(monkeypatch, capsys):
    import pytest
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="not yet"):
        exercises.check_kl(lambda mu, lv: mu)
    exercises.check_kl(lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1))  # correct: no raise
