import torch

from aigc_course.teaching import exercises


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


def test_evaluation_and_responsible_exercises(capsys):
    from aigc_course import metrics

    exercises.check_frechet_distance(lambda m1, c1, m2, c2: torch.tensor(metrics.frechet_distance(m1, c1, m2, c2)))
    assert _first_line(capsys) == "Exercise 6.1 Fréchet distance: correct"
    # the classic mistake: sqrt of the product's trace instead of the trace of the product's square root
    exercises.check_frechet_distance(lambda m1, c1, m2, c2: (m1 - m2).pow(2).sum() + c1.trace() + c2.trace()
                                     - 2 * (c1 @ c2).trace().sqrt())
    assert "not yet" in _first_line(capsys)

    def precision(real, fake, k):
        radii = torch.cdist(real, real).sort(dim=1).values[:, k]
        return (torch.cdist(fake, real) <= radii).any(dim=1).float().mean()
    exercises.check_precision(precision)
    assert _first_line(capsys) == "Exercise 6.2 k-NN precision: correct"
    exercises.check_precision(lambda real, fake, k: precision(real, fake, k - 1))  # counted the point itself
    assert "not yet" in _first_line(capsys)
    exercises.check_z_score(lambda g, t, gamma: (g - gamma * t) / torch.sqrt(t * gamma * (1 - gamma)))
    assert _first_line(capsys) == "Exercise 7.1 watermark z-score: correct"
    exercises.check_z_score(lambda g, t, gamma: (g - gamma * t) / torch.sqrt(t * gamma))
    assert "not yet" in _first_line(capsys)
    assert [e.function for e in exercises.exercises_for("06_evaluation")] == ["my_frechet_distance", "my_precision"]
