import json
import math
import re
from pathlib import Path

import pytest
import torch

from aigc_course.teaching import exercises
from aigc_course.teaching.exercises import evaluation, gpt2, responsible_aigc, vae

ROOT = Path(__file__).resolve().parents[1]


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
    assert [e.function for e in exercises.exercises_for("06_evaluation")] == [
        "my_frechet_distance", "my_precision", "my_fid", "my_prediction_fid_n", "my_prediction_recall"]


# Lessons 03 and 04: the behaviour-graded exercises (L-BFGS closure, diffusion training loss, sampling loop)
# and the predict-then-run questions. The right answers are written here from the papers, not from the package.

def _style_loss_by_hand(features, grams):
    total = 0
    for f, a in zip(features, grams):
        b, c, h, w = f.shape
        flat = f.reshape(b, c, h * w)
        total = total + ((flat @ flat.transpose(1, 2) / (c * h * w) - a) ** 2).mean()
    return total


def _tv_by_hand(x):
    return ((x[:, :, 1:] - x[:, :, :-1]) ** 2).mean() + ((x[..., 1:] - x[..., :-1]) ** 2).mean()


def _closure_by_hand(zero_grad=True, swap=False):
    def make(image, optimizer, extract, content_targets, style_grams, weights):
        wc, ws, wt = (weights[1], weights[0], weights[2]) if swap else weights

        def closure():
            if zero_grad:
                optimizer.zero_grad()
            content_features, style_features = extract(image)
            loss = wc * sum(((f - t) ** 2).mean() for f, t in zip(content_features, content_targets)) \
                + ws * _style_loss_by_hand(style_features, style_grams) + wt * _tv_by_hand(image)
            loss.backward()
            return loss
        return closure
    return make


def test_style_objective_on_images_with_known_total_variation():
    stripes = (torch.arange(8) % 2).float().expand(1, 3, 8, 8).clone()   # columns 0, 1, 0, 1, ...: dx^2 = 1, dy = 0
    assert exercises.style_objective(stripes, stripes, stripes, torch.tensor([0.0, 0.0, 1.0])) == pytest.approx(1.0)
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert exercises.style_objective(flat, flat, flat, torch.tensor([1.0, 1.0, 1.0])) == 0.0   # its own target


def test_closure_exercise_grades_the_loss_lbfgs_reaches(capsys):
    exercises.check_closure(_closure_by_hand())
    assert _first_line(capsys) == "Exercise 3.4 L-BFGS closure: correct"
    ex = exercises.EXERCISES["3.4"]
    args = ex.grading_inputs(seed=1)[-1]
    start = exercises.style_objective(args[2], *args[:2], args[3])
    reached = exercises.style_objective(ex.reference(*args), *args[:2], args[3])
    assert reached < 0.6 * start                     # 30 evaluations do optimise: the check is not vacuous
    for wrong in (_closure_by_hand(zero_grad=False),  # gradients pile up over the line search's evaluations
                  _closure_by_hand(swap=True)):       # style weight on the content term and vice versa
        exercises.check_closure(wrong)
        line = _first_line(capsys)
        assert line.startswith("Exercise 3.4 L-BFGS closure: not yet - ") and "gradients" in line, line
    exercises.check_closure(lambda *args: None)      # returned no closure
    assert "your code raised TypeError" in _first_line(capsys)


def test_mixture_eps_matches_the_score_of_the_noised_mixture():
    # one Gaussian N((1, 0), 0.5^2 I) at abar = 0.64: q_t = N((0.8, 0), 0.52 I), so at x = 0 the score is
    # (0.8 / 0.52, 0) and eps* = -sqrt(0.36) * score = (-0.923077, 0)
    eps = exercises.mixture_eps(torch.tensor([[1.0, 0.0]]), 0.5, torch.tensor([1.0]), torch.tensor([0.9, 0.64]))
    assert eps(torch.zeros(1, 2), 1)[0].tolist() == pytest.approx([-0.6 * 0.8 / 0.52, 0.0], abs=1e-6)
    # three components: against autograd of the log-density written with torch.distributions
    means, std, weights = torch.tensor([[2.0, 0.0], [-1.0, 1.0], [0.0, -2.0]]).double(), 0.3, torch.tensor(
        [0.5, 0.3, 0.2]).double()
    abar = torch.tensor([0.3]).double()
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    comps = torch.distributions.Independent(torch.distributions.Normal(
        abar.sqrt() * means, (abar * std ** 2 + 1 - abar).sqrt().expand(3, 2)), 1)
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(weights), comps)
    score, = torch.autograd.grad(mix.log_prob(x).sum(), x)
    got = exercises.mixture_eps(means, std, weights, abar)(x.detach(), 0)
    assert torch.allclose(got, -(1 - abar).sqrt() * score, atol=1e-10)


def _sampler_by_hand(noise=True, forward=False, sigma2="beta_tilde"):
    """Ho et al. 2020, algorithm 2: x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z,
    with sigma_t^2 = beta_t or beta_tilde_t (both are in the paper)."""
    def sample(model, x, betas, abar):
        steps = range(len(betas)) if forward else range(len(betas) - 1, -1, -1)
        for t in steps:
            x = (x - betas[t] / (1 - abar[t]).sqrt() * model(x, t)) / (1 - betas[t]).sqrt()
            if t > 0 and noise:
                var = betas[t] if sigma2 == "beta" else (1 - abar[t - 1]) / (1 - abar[t]) * betas[t]
                x = x + var.sqrt() * torch.randn_like(x)
        return x
    return sample


def test_mixture_fit_accepts_the_mixture_and_rejects_a_narrower_one():
    g = torch.Generator().manual_seed(3)
    means, std, weights = torch.tensor([[2.5, 0.0], [-2.5, 0.0], [0.0, 2.5]]).double(), 0.3, torch.tensor(
        [0.5, 0.3, 0.2]).double()
    which = torch.multinomial(weights, 2000, replacement=True, generator=g)
    noise = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    right = exercises.mixture_fit(means[which] + std * noise, means, std, weights)
    assert all(right[k] <= limit / 2 for k, limit in exercises.SAMPLER_LIMITS.items()), right
    narrow = exercises.mixture_fit(means[which] + 0.5 * std * noise, means, std, weights)
    assert narrow["spread"] == pytest.approx(0.5, abs=0.05)
    one_mode = exercises.mixture_fit(means[:1].expand(2000, 2) + std * noise, means, std, weights)
    assert one_mode["mean"] == float("inf") and one_mode["mass"] == pytest.approx(0.5)


def test_sampling_loop_exercise_judges_what_the_loop_draws(capsys):
    for right in (_sampler_by_hand(), _sampler_by_hand(sigma2="beta")):
        exercises.check_sample(right)
        assert _first_line(capsys) == "Exercise 4.5 ancestral sampling loop: correct"
    for wrong in (_sampler_by_hand(noise=False),     # no fresh z: every point slides onto a mode's centre
                  _sampler_by_hand(forward=True),    # t runs the wrong way
                  lambda model, x, betas, abar: x):  # no loop at all
        exercises.check_sample(wrong)
        line = _first_line(capsys)
        assert line.startswith("Exercise 4.5 ancestral sampling loop: not yet - ") and "fresh" in line, line
    ex = exercises.EXERCISES["4.5"]                  # the reference, on the inputs of ten grading seeds
    fits = [exercises.mixture_fit(ex.reference(*args), *args[3:])
            for seed in range(10) for args in ex.grading_inputs(seed)[2:]]
    assert max(f["mass"] for f in fits) < 0.02 and max(f["mean"] for f in fits) < 0.15
    assert max(f["spread"] for f in fits) < 0.16


def _diffusion_loss_by_hand(target="noise", sqrt=True):
    """Ho et al. 2020, algorithm 1: t ~ Uniform{0..T-1}, eps ~ N(0, I), || eps - eps_theta(x_t, t) ||^2."""
    def loss(model, x0, abar):
        t = torch.randint(0, len(abar), (x0.shape[0],))
        eps = torch.randn(x0.shape)
        a = abar[t].reshape(-1, 1)
        x_t = (a.sqrt() * x0 + (1 - a).sqrt() * eps) if sqrt else (a * x0 + (1 - a) * eps)
        return ((model(x_t, t) - (eps if target == "noise" else x0)) ** 2).sum(1).mean() / 2
    return loss


def test_heldout_denoising_error_of_a_network_that_predicts_zero_is_the_noise_variance():
    data, abar = exercises.EXERCISES["4.4"].public()
    zero = torch.zeros(sum(p.numel() for p in exercises.toy_denoiser(len(abar)).parameters()))
    # E[eps^2] = 1; the mean of 4,000 squared normals has standard deviation sqrt(2 / 4000) = 0.022
    assert exercises.heldout_denoising_error(zero, data, abar) == pytest.approx(1.0, abs=0.08)


def test_training_loss_exercise_judges_the_trained_network(capsys):
    exercises.check_diffusion_loss(_diffusion_loss_by_hand())
    assert _first_line(capsys) == "Exercise 4.4 diffusion training loss: correct"
    for wrong in (_diffusion_loss_by_hand(target="x0"),   # regresses the clean point, not the noise
                  _diffusion_loss_by_hand(sqrt=False)):    # abar x0 + (1 - abar) eps: not the forward process
        exercises.check_diffusion_loss(wrong)
        line = _first_line(capsys)
        assert line.startswith("Exercise 4.4 diffusion training loss: not yet - ") and "noise" in line, line


@pytest.mark.parametrize("exercise, check, right", [
    ("3.5", exercises.check_prediction_optimizer, "B"), ("3.6", exercises.check_prediction_style_weight, "B"),
    ("4.6", exercises.check_prediction_samplers, "A"), ("4.7", exercises.check_prediction_guidance, "A")])
def test_predict_then_run_questions(capsys, exercise, check, right):
    title = exercises.EXERCISES[exercise].title
    check(lambda: right.lower() + " ")   # case and spaces do not matter
    assert _first_line(capsys) == f"Exercise {exercise} {title}: correct"
    check(lambda: "C")
    assert _first_line(capsys).startswith(f"Exercise {exercise} {title}: not yet - ")
    check(lambda: 0)
    assert "return one of the letters" in _first_line(capsys)
    for reply in ("", "  ", "AB", "ABC"):   # not one letter: never read as "A" (a substring of "ABC")
        check(lambda: reply)
        assert "return one of the letters A, B, C as a string" in _first_line(capsys), reply


def test_the_optimizer_prediction_agrees_with_the_lessons_measured_run(capsys):
    """3.5's answer is whichever optimiser ends lower in lesson 03's executed comparison (the letter was once
    wrong: it said L-BFGS while the lesson's own output showed Adam lower)."""
    lesson = json.loads((ROOT / "notebooks" / "03_style_transfer.ipynb").read_text(encoding="utf-8"))
    cell = next(c for c in lesson["cells"] if c["cell_type"] == "code" and 'optimizer=optimizer' in "".join(c["source"]))
    text = "".join("".join(o.get("text", "")) for o in cell["outputs"])
    final = {name: float(x) for name, x in re.findall(r"(lbfgs|adam): .* -> ([0-9.e+-]+)", text)}
    assert set(final) == {"lbfgs", "adam"}, text
    exercises.check_prediction_optimizer(lambda: "A" if final["lbfgs"] < final["adam"] else "B")
    assert _first_line(capsys).endswith(": correct"), final


def test_diffusion_references_follow_the_schedule_their_inputs_carry():
    """4.1-4.3's references once rebuilt the linear schedule whatever alphas_cumprod they were given."""
    ex1, ex3 = exercises.EXERCISES["4.1"], exercises.EXERCISES["4.3"]
    x0, t, noise, _ = ex1.public()
    abar = torch.linspace(0.99, 0.01, 1000)                       # any decreasing schedule
    by_hand = abar[t].sqrt().reshape(-1, 1, 1, 1) * x0 + (1 - abar[t]).sqrt().reshape(-1, 1, 1, 1) * noise
    assert torch.allclose(ex1.reference(x0, t, noise, abar), by_hand, atol=1e-5)
    x_t, eps, t, t_prev, _ = ex3.public()
    x0_hat = (x_t - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
    assert torch.allclose(ex3.reference(x_t, eps, t, t_prev, abar),
                          abar[t_prev].sqrt() * x0_hat + (1 - abar[t_prev]).sqrt() * eps, atol=1e-5)


# Lessons 00, 01 and 02: the quiz, the two training steps graded by what they train, predict-then-run questions.

def test_quiz_and_predict_questions_take_one_letter(capsys):
    right = {"0.1": "B", "0.2": "C", "0.3": "C", "1.4": "B", "1.5": "C", "2.5": "B", "2.6": "A"}
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
    n = sum(p.numel() for p in vae._step_vae(0).parameters())
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

# Lessons 05-07, behaviour-graded exercises and predictions: hand-written solutions, pinned to closed forms first.

def _block_by_hand(x, w, n_head, post_norm=False, causal=True, exact_gelu=False):
    """Radford et al. 2019 (GPT-2): pre-norm block, x + attn(LN(x)), then + mlp(LN(.)); MLP with tanh-GELU.
    The switches make the common mistakes."""
    import torch.nn.functional as F
    B, T, C = x.shape

    def ln(t, name):
        return F.layer_norm(t, (C,), w[name + ".weight"], w[name + ".bias"], 1e-5)

    def attn(t):
        q, k, v = (F.linear(t, w["attn.c_attn.weight"], w["attn.c_attn.bias"])
                   .split(C, -1))
        q, k, v = (a.reshape(B, T, n_head, C // n_head).transpose(1, 2) for a in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(C // n_head)
        if causal:
            scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        return F.linear(y, w["attn.c_proj.weight"], w["attn.c_proj.bias"])

    def mlp(t):
        h = F.linear(t, w["mlp.c_fc.weight"], w["mlp.c_fc.bias"])
        h = F.gelu(h) if exact_gelu else F.gelu(h, approximate="tanh")
        return F.linear(h, w["mlp.c_proj.weight"], w["mlp.c_proj.bias"])

    if post_norm:  # the 2017 Transformer's order: LN after each residual sum
        x = ln(x + attn(x), "ln_1")
        return ln(x + mlp(x), "ln_2")
    x = x + attn(ln(x, "ln_1"))
    return x + mlp(ln(x, "ln_2"))


def test_block_pinned_and_checked(capsys):
    ex = exercises.EXERCISES["5.4"]
    x, weights, n_head = ex.public()
    zeroed = dict(zip(gpt2._BLOCK_NAMES, weights))
    for name in zeroed:
        if name.startswith(("attn", "mlp")):
            zeroed[name] = torch.zeros_like(zeroed[name])
    assert torch.equal(_block_by_hand(x, zeroed, n_head), x)  # both sub-layers output 0: the residuals give x back
    # one position: attention over itself alone returns its own value vector, causal or not
    one = x[:, :1]
    w = dict(zip(gpt2._BLOCK_NAMES, weights))
    assert torch.allclose(_block_by_hand(one, w, n_head), _block_by_hand(one, w, n_head, causal=False))
    exercises.check_block(_block_by_hand)
    assert _first_line(capsys) == "Exercise 5.4 Transformer block: correct"
    for mistake in (dict(post_norm=True), dict(causal=False), dict(exact_gelu=True)):
        exercises.check_block(lambda x, w, h, m=mistake: _block_by_hand(x, w, h, **m))
        line = _first_line(capsys)
        assert line.startswith("Exercise 5.4 Transformer block: not yet - pre-norm"), line
    for seed in range(2):  # the grader's way, on hidden shapes too
        for args in ex.grading_inputs(seed):
            assert ex.judge(ex.run(_block_by_hand, args), ex.reference(*args), args)[0]


def test_predictions_judge_the_committed_answer(capsys):
    exercises.check_prediction_kv_cache(lambda: " a ")   # letters are read case- and space-insensitively
    assert _first_line(capsys) == "Exercise 5.5 prediction: the KV cache: correct"
    # 24,576 is the count the lesson prints for the tang_lora adapter
    for answer, verdict in ((24576, "correct"), (24_576.0, "correct"), (6144, "not yet"), (49152, "not yet")):
        exercises.check_prediction_lora_parameters(lambda a=answer: a)
        assert verdict in _first_line(capsys)
    for check, right, wrong in ((exercises.check_prediction_fid_n, "C", "B"),
                                (exercises.check_prediction_recall, "A", "B"),
                                (exercises.check_prediction_watermark, "D", "B"),
                                (exercises.check_prediction_human_text, "B", "A")):
        check(lambda: right)
        assert _first_line(capsys).endswith(": correct")
        check(lambda: wrong)
        line = _first_line(capsys)
        assert ": not yet - " in line and f'"{right}"' not in line and f" {right} " not in line, line
    for bad, message in (("AB", "answer with one letter"), (True, "a letter in quotes or a number"),
                         (None, "a letter in quotes or a number")):
        exercises.check_prediction_recall(lambda b=bad: b)
        assert message in _first_line(capsys)


def _fid_by_hand(real, fake, biased=False, rows_as_variables=False):
    """Heusel et al. 2017: Gaussians fitted to the two feature sets (unbiased covariance), then their
    Fréchet distance (``_frechet_by_hand`` above)."""
    def fit(f):
        centred = f - f.mean(0)
        if rows_as_variables:
            return f.mean(0), torch.cov(f)
        return f.mean(0), centred.T @ centred / (len(f) - (0 if biased else 1))
    return _frechet_by_hand(*fit(real), *fit(fake))


def test_fid_from_features_pinned_and_checked(capsys):
    # 1-D: real {0, 2} (mean 1, variance 2), fake {1, 3} (mean 2, variance 2): FID = (1 - 2)^2 + 0 = 1
    real, fake = torch.tensor([[0.0], [2.0]]).double(), torch.tensor([[1.0], [3.0]]).double()
    assert float(_fid_by_hand(real, fake)) == pytest.approx(1.0)
    assert float(evaluation._fid_reference(real, fake)) == pytest.approx(1.0)
    # dividing by N instead of N - 1 halves both variances here: (1 - 2)^2 + (1 - 1)^2 = 1 still, so use {0, 4}:
    # variances 8 (unbiased) vs 4 (biased) against {0, 2}'s 2 vs 1: (sqrt 8 - sqrt 2)^2 = 2 vs (2 - 1)^2 = 1, + 1
    wide = torch.tensor([[0.0], [4.0]]).double()
    assert float(_fid_by_hand(real, wide)) == pytest.approx(1 + 2)
    assert float(_fid_by_hand(real, wide, biased=True)) == pytest.approx(1 + 1)
    exercises.check_fid(_fid_by_hand)
    assert _first_line(capsys) == "Exercise 6.3 FID from features: correct"
    ex = exercises.EXERCISES["6.3"]
    identical, rank_deficient = (make() for make in ex.edge)
    assert float(ex.reference(*identical)) == pytest.approx(0.0, abs=1e-9)
    assert torch.linalg.matrix_rank(torch.cov(rank_deficient[0].T)) == 2  # 3 samples in 6 dimensions
    for seed in range(3):
        for args in ex.grading_inputs(seed):
            assert ex.judge(ex.run(_fid_by_hand, args), ex.reference(*args), args)[0], args[0].shape
    for mistake in (dict(biased=True), dict(rows_as_variables=True)):
        exercises.check_fid(lambda r, f, m=mistake: _fid_by_hand(r, f, **m))
        line = _first_line(capsys)
        assert line.startswith("Exercise 6.3 FID from features: not yet - ") and "N - 1" in line, line


def _detector_by_hand(real, fake, steps, lr, swap=False, ascent=False, bias=True):
    """Logistic regression by full-batch gradient descent, the gradient written out (no autograd):
    d/dw mean BCE = x^T (sigmoid(s) - y) / n, d/db = mean(sigmoid(s) - y)."""
    x = torch.cat([real, fake])
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))]).double()
    if swap:
        y = 1 - y
    w, b = torch.zeros(x.shape[1], dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    sign = -1 if ascent else 1
    for _ in range(steps):
        err = torch.sigmoid(x @ w + b) - y
        w = w - sign * lr * x.T @ err / len(y)
        if bias:
            b = b - sign * lr * err.mean()
    return w, b


def test_detector_training_is_judged_by_held_out_accuracy(capsys):
    ex = exercises.EXERCISES["7.2"]
    args = ex.public()
    # calibration: the classes are N(m, I) and N(m + 2u, I); the best possible balanced accuracy is Phi(1) = 0.8413
    truth = args[4]
    d = len(truth) // 2
    g = torch.Generator().manual_seed(0)
    real = torch.randn(20000, d, generator=g, dtype=torch.float64) + truth[:d]
    fake = torch.randn(20000, d, generator=g, dtype=torch.float64) + truth[:d] + truth[d:]
    assert responsible_aigc._balanced_accuracy(ex.reference(*args), real, fake) == pytest.approx(0.8413, abs=0.03)
    exercises.check_train_detector(_detector_by_hand)
    assert _first_line(capsys) == "Exercise 7.2 training a detector: correct"
    for seed in range(2):
        for case in ex.grading_inputs(seed):
            assert ex.judge(ex.run(_detector_by_hand, case), ex.reference(*case), case)[0]
    for mistake in (dict(swap=True), dict(ascent=True), dict(bias=False)):
        exercises.check_train_detector(lambda r, f, s, lr, m=mistake: _detector_by_hand(r, f, s, lr, **m))
        line = _first_line(capsys)
        assert line.startswith("Exercise 7.2 training a detector: not yet - label real 0"), line
    exercises.check_train_detector(lambda r, f, s, lr: _detector_by_hand(r, f, 1, lr))  # stopped after one step
    assert "not yet" in _first_line(capsys)


def _step_by_hand(model, optimizer, batch, shift=True, clear=True, update=True):
    """Next-token cross-entropy (Radford et al. 2018's language-modelling objective), one optimiser update."""
    import torch.nn.functional as F
    inputs = batch[:, :-1]
    targets = batch[:, 1:] if shift else inputs
    logits, _ = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    if clear:
        optimizer.zero_grad()
    loss.backward()
    if update:
        optimizer.step()
    return loss


def test_training_step_is_judged_by_the_held_out_loss(capsys):
    ex = exercises.EXERCISES["5.7"]
    table, tokens = ex.public()
    # the floor no model can beat: the table's entropy rate, sum_i pi_i H(P_i) with pi the stationary distribution
    pi = torch.full((len(table),), 1 / len(table), dtype=torch.float64)
    for _ in range(500):
        pi = pi @ table
    floor = float((pi * -(table * table.log()).sum(1)).sum())
    untrained = gpt2._heldout_lm_loss(torch.nn.utils.parameters_to_vector(
        gpt2._tiny_gpt(len(table)).parameters()).detach(), table)
    assert untrained == pytest.approx(math.log(len(table)), abs=0.3)     # small initial weights: near uniform
    trained = gpt2._heldout_lm_loss(ex.reference(*ex.public()), table)
    assert floor - 0.1 < trained < untrained - 0.5                        # learns most of what can be learned
    exercises.check_train_step(_step_by_hand)
    assert _first_line(capsys) == "Exercise 5.7 GPT training step: correct"
    for mistake in (dict(shift=False), dict(clear=False), dict(update=False)):
        exercises.check_train_step(lambda m, o, b, k=mistake: _step_by_hand(m, o, b, **k))
        line = _first_line(capsys)
        assert line.startswith("Exercise 5.7 GPT training step: not yet - inputs are the first T tokens"), line
