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
    assert [e.function for e in exercises.exercises_for("01_vae")] == ["my_reparameterize", "my_kl"]


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
    zeroed = dict(zip(exercises._BLOCK_NAMES, weights))
    for name in zeroed:
        if name.startswith(("attn", "mlp")):
            zeroed[name] = torch.zeros_like(zeroed[name])
    assert torch.equal(_block_by_hand(x, zeroed, n_head), x)  # both sub-layers output 0: the residuals give x back
    # one position: attention over itself alone returns its own value vector, causal or not
    one = x[:, :1]
    w = dict(zip(exercises._BLOCK_NAMES, weights))
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
    assert float(exercises._fid_reference(real, fake)) == pytest.approx(1.0)
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
    assert exercises._balanced_accuracy(ex.reference(*args), real, fake) == pytest.approx(0.8413, abs=0.03)
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
    untrained = exercises._heldout_lm_loss(torch.nn.utils.parameters_to_vector(
        exercises._tiny_gpt(len(table)).parameters()).detach(), table)
    assert untrained == pytest.approx(math.log(len(table)), abs=0.3)     # small initial weights: near uniform
    trained = exercises._heldout_lm_loss(ex.reference(*ex.public()), table)
    assert floor - 0.1 < trained < untrained - 0.5                        # learns most of what can be learned
    exercises.check_train_step(_step_by_hand)
    assert _first_line(capsys) == "Exercise 5.7 GPT training step: correct"
    for mistake in (dict(shift=False), dict(clear=False), dict(update=False)):
        exercises.check_train_step(lambda m, o, b, k=mistake: _step_by_hand(m, o, b, **k))
        line = _first_line(capsys)
        assert line.startswith("Exercise 5.7 GPT training step: not yet - inputs are the first T tokens"), line
