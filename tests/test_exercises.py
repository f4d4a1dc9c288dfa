import math

import pytest
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
    assert [e.function for e in exercises.exercises_for("01_vae")] == [
        "my_reparameterize", "my_kl", "my_vae_step", "my_answer_1_4", "my_answer_1_5"]


def test_wrong_answer_raises_under_nbgrader_autograde(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="not yet"):
        exercises.check_kl(lambda mu, lv: mu)
    exercises.check_kl(lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1))  # correct: no raise


def _kl_by_hand(mu, logvar):
    """Kingma & Welling 2014, appendix B: KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)."""
    return -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)


def test_kl_matches_the_closed_form_of_one_dimensional_gaussians(capsys):
    from aigc_course.models.vae import kl_to_standard_normal

    zero = torch.zeros(1, 1)
    for kl in (_kl_by_hand, kl_to_standard_normal):
        assert kl(zero, zero).item() == 0.0                        # KL(N(0, 1) || N(0, 1)) = 0
        assert kl(zero + 1, zero).item() == pytest.approx(0.5)    # a shifted mean costs mu^2 / 2
        # N(0, 2^2): log(1/sigma) + (sigma^2 + mu^2) / 2 - 1/2 = -log 2 + 2 - 1/2
        assert kl(zero, torch.full((1, 1), math.log(4.0))).item() == pytest.approx(1.5 - math.log(2.0))
    exercises.check_kl(_kl_by_hand)
    assert _first_line(capsys) == "Exercise 1.2 KL divergence: correct"


# Lessons 06 and 07: hand-written from the papers' equations, pinned to closed forms first.

def _frechet_by_hand(mu1, cov1, mu2, cov2):
    """Dowson & Landau 1982 (Heusel et al. 2017's FID): ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^1/2).
    tr((C1 C2)^1/2) is the sum of the square roots of C1 C2's eigenvalues (real and >= 0 for
    covariance matrices, though C1 C2 is not symmetric)."""
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    roots = torch.linalg.eigvals(cov1 @ cov2).real.clamp(min=0).sqrt()
    return (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * roots.sum()


def _precision_by_hand(real, fake, k):
    """Kynkäänniemi et al. 2019: the share of samples inside some real point's ball, whose radius is the
    distance to that point's k-th nearest *other* real point. Python loops, no cdist."""
    real, fake = real.double().tolist(), fake.double().tolist()

    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    radii = [sorted(dist(r, o) for j, o in enumerate(real) if j != i)[k - 1] for i, r in enumerate(real)]
    inside = [any(dist(f, r) <= radius for r, radius in zip(real, radii)) for f in fake]
    return torch.tensor(sum(inside) / len(inside))


def _z_score_by_hand(greens, total, gamma):
    """Kirchenbauer et al. 2023: z = (|s|_G - gamma T) / sqrt(T gamma (1 - gamma))."""
    return torch.tensor([(g - gamma * t) / math.sqrt(t * gamma * (1 - gamma))
                         for g, t in zip(greens.tolist(), total.tolist())])


def test_evaluation_formulas_match_closed_forms():
    from aigc_course import metrics

    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    mu, cov = torch.randn(3, generator=g, dtype=torch.float64), a @ a.T + torch.eye(3, dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    for fd in (_frechet_by_hand, metrics.frechet_distance):
        assert float(fd(mu, cov, mu, cov)) == pytest.approx(0.0, abs=1e-9)       # identical Gaussians
        # 1-D: (m1 - m2)^2 + (s1 - s2)^2; N(1, 2^2) vs N(-2, 3^2) gives 9 + 1
        assert float(fd(torch.tensor([1.0]), 4 * one, torch.tensor([-2.0]), 9 * one)) == pytest.approx(10.0)
        # diagonal covariances: per axis (s1 - s2)^2, here (1 - 2)^2 + (3 - 1)^2 plus |mu1 - mu2|^2 = 2
        assert float(fd(torch.zeros(2), torch.diag(torch.tensor([1.0, 9.0])).double(),
                        torch.ones(2), torch.diag(torch.tensor([4.0, 1.0])).double())) == pytest.approx(7.0)
    # precision, k = 1, on a line: real balls [0 +- 1], [1 +- 1], [2 +- 1], [10 +- 8];
    # samples 0.5, 3.5 (in 10's ball), 1.9 are inside; 20 and -1.2 are not -> 3/5
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    fake = torch.tensor([[0.5], [20.0], [3.5], [1.9], [-1.2]])
    assert _precision_by_hand(real, fake, 1).item() == pytest.approx(0.6)
    assert metrics.precision_recall(real, fake, k=1) == pytest.approx((0.6, 1.0))  # every real point is covered
    # z-score: half green at gamma = 1/2 is chance (0); 75 of 100 is 25 / sqrt(100 / 4) = 5 standard deviations
    assert _z_score_by_hand(torch.tensor([50.0, 75.0]), torch.tensor([100.0, 100.0]), 0.5).tolist() == [0.0, 5.0]


def test_evaluation_and_responsible_checks_accept_the_equations_and_reject_mistakes(capsys):
    exercises.check_frechet_distance(_frechet_by_hand)
    assert _first_line(capsys) == "Exercise 6.1 Fréchet distance: correct"
    exercises.check_precision(_precision_by_hand)
    assert _first_line(capsys) == "Exercise 6.2 k-NN precision: correct"
    exercises.check_z_score(_z_score_by_hand)
    assert _first_line(capsys) == "Exercise 7.1 watermark z-score: correct"
    mistakes = [
        ("6.1", exercises.check_frechet_distance,  # sqrt of the product's trace, not trace of its square root
         lambda m1, c1, m2, c2: (m1 - m2).pow(2).sum() + c1.trace() + c2.trace() - 2 * (c1 @ c2).trace().sqrt()),
        ("6.1", exercises.check_frechet_distance,  # forgot the factor 2 on the cross term
         lambda m1, c1, m2, c2: _frechet_by_hand(m1, c1, m2, c2) + torch.linalg.eigvals(c1 @ c2).real.sqrt().sum()),
        ("6.1", exercises.check_frechet_distance,  # distance between means only, not squared
         lambda m1, c1, m2, c2: (m1 - m2).norm()),
        ("6.2", exercises.check_precision,  # counted each real point as its own nearest neighbour
         lambda real, fake, k: _precision_by_hand(real, fake, k - 1)),
        ("6.2", exercises.check_precision,  # swapped roles: that is recall
         lambda real, fake, k: _precision_by_hand(fake, real, k)),
        ("7.1", exercises.check_z_score,  # forgot (1 - gamma) in the binomial variance
         lambda g, t, gamma: (g - gamma * t) / torch.sqrt(t * gamma)),
        ("7.1", exercises.check_z_score,  # the share of greens, not a z-score
         lambda g, t, gamma: g / t - gamma),
    ]
    for exercise, check, wrong in mistakes:
        check(wrong)
        line = _first_line(capsys)
        assert line.startswith(f"Exercise {exercise} ") and ": not yet - " in line, line
    assert [e.function for e in exercises.exercises_for("06_evaluation")] == ["my_frechet_distance", "my_precision"]


# Lessons 00, 01 and 02: the quiz, the two training steps graded by what they train, predict-then-run questions.

def test_quiz_and_predict_questions_take_one_letter(capsys):
    right = {"0.1": "B", "0.2": "C", "0.3": "C", "1.4": "B", "1.5": "C", "2.5": "B", "2.6": "B"}
    for exercise, letter in right.items():
        answer = (lambda letter: lambda: letter)(letter)
        answer.__name__ = f"my_answer_{exercise.replace('.', '_')}"
        exercises.check_answer(answer)
        assert _first_line(capsys).endswith(": correct")
        answer = (lambda letter: lambda: f" {letter.lower()} ")(letter)   # case and spaces do not matter
        answer.__name__ = f"my_answer_{exercise.replace('.', '_')}"
        exercises.check_answer(answer)
        assert _first_line(capsys).endswith(": correct")
        answer = (lambda letter: lambda: "A" if letter != "A" else "B")(letter)
        answer.__name__ = f"my_answer_{exercise.replace('.', '_')}"
        exercises.check_answer(answer)
        line = _first_line(capsys)
        assert line.startswith(f"Exercise {exercise} ") and ": not yet - " in line, line

    def my_answer_0_1():
        return 2
    exercises.check_answer(my_answer_0_1)
    assert "return one letter as a string, one of 'A', 'B', 'C', 'D'; got 2" in _first_line(capsys)

    def my_answer_0_3():
        return "D"   # only A, B or C here
    exercises.check_answer(my_answer_0_3)
    assert "one of 'A', 'B', 'C'; got 'D'" in _first_line(capsys)
    exercises.check_answer(lambda: "B")  # a renamed function: the check cannot tell which question
    assert _first_line(capsys).startswith("Exercise ? question: not yet - keep the function's name")
    assert [e.function for e in exercises.exercises_for("00_welcome")] == [
        "my_answer_0_1", "my_answer_0_2", "my_answer_0_3"]


def _vae_step(sign=1.0, zero_grad=True, kl=True):
    """A VAE step written from Kingma & Welling 2014 (eq. 10; appendix B for the KL), with switchable mistakes."""
    def step(model, optimizer, x, eps):
        mu, logvar = model.encode(x)
        logits = model.decode(mu + (0.5 * logvar).exp() * eps)
        p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
        nll = -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))
        divergence = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1) if kl else 0.0
        loss = sign * (nll + divergence).mean()
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()
    return step


def test_heldout_measure_of_the_vae_step_exercise():
    """All weights 0: mu = logvar = 0 (KL 0) and every pixel's logit 0 (p = 1/2): -ELBO = 784 ln 2 nats."""
    n = sum(p.numel() for p in exercises._step_vae(0).parameters())
    assert exercises.heldout_negative_elbo(torch.zeros(n)) == pytest.approx(784 * math.log(2), rel=1e-5)
    assert exercises.heldout_negative_elbo(torch.full((n,), float("nan"))) == float("inf")


def test_vae_step_trains_and_common_mistakes_fail(capsys):
    exercises.check_vae_step(_vae_step())
    assert _first_line(capsys) == "Exercise 1.3 VAE training step: correct"
    for wrong in (_vae_step(sign=-1.0), _vae_step(zero_grad=False), _vae_step(kl=False)):
        exercises.check_vae_step(wrong)
        line = _first_line(capsys)
        assert line.startswith("Exercise 1.3 VAE training step: not yet - after 150 steps"), line
        assert "cleared before backward" in line and "minimised (not maximised)" in line


def _gan_step(g_sign=1.0, zero_grad=True, swap=False):
    """Algorithm 1 of Goodfellow et al. 2014 with k = 1 and the non-saturating G loss, written with BCE."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def step(toy, d_opt, g_opt, real, z):
        fake = toy.generate(z)
        r, f = toy.discriminate(real), toy.discriminate(fake.detach())
        ones, zeros = torch.ones_like(r), torch.zeros_like(f)
        d_loss = bce(r, zeros) + bce(f, ones) if swap else bce(r, ones) + bce(f, zeros)
        if zero_grad:
            d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        logits = toy.discriminate(fake)
        g_loss = g_sign * bce(logits, torch.ones_like(logits))
        if zero_grad:
            g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
    return step


def test_modes_covered_counts_modes_with_two_percent_of_the_samples():
    angles = torch.arange(8) * (2 * math.pi / 8)
    centres = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)   # the ring: radius 2, first mode at (2, 0)
    assert exercises.modes_covered(centres.repeat(50, 1)) == 8
    shifted = centres[:5].repeat(50, 1) + torch.tensor([0.55, 0.0])   # 0.55 < 3 std = 0.6 from each centre
    assert exercises.modes_covered(shifted) == 5
    assert exercises.modes_covered(centres[:5].repeat(50, 1) + torch.tensor([0.65, 0.0])) == 0  # just too far
    assert exercises.modes_covered(torch.zeros(400, 2)) == 0                # all at the origin: collapsed
    few = torch.cat([centres[:1].repeat(990, 1), centres[1:2].repeat(10, 1)])  # 1% on mode 1: not covered
    assert exercises.modes_covered(few) == 1


def test_gan_step_trains_and_common_mistakes_fail(capsys):
    exercises.check_gan_step(_gan_step())
    assert _first_line(capsys) == "Exercise 2.4 GAN training step: correct"
    for wrong in (_gan_step(g_sign=-1.0), _gan_step(zero_grad=False), _gan_step(swap=True)):
        exercises.check_gan_step(wrong)
        line = _first_line(capsys)
        assert line.startswith("Exercise 2.4 GAN training step: not yet - after 700 steps"), line
        assert "clears its gradients" in line and "real -> 1 and fake -> 0" in line
