"""The course's exercises and their checks: each check prints exactly one deterministic verdict line.

An exercise knows its inputs and the reference answer; ``Exercise.evaluate``
compares a learner's function with it and returns ``(ok, line)``, never raising
because of the learner's code: an unfinished exercise (``NotImplementedError``),
an exception, a wrong type, shape or value each give a verdict with a hint.

Notebooks call ``check_reparameterize(my_reparameterize)`` in a cell marked
``# NBVAL_CHECK_OUTPUT``, so ``pytest --nbval-lax`` compares the printed line
with the correct one stored in the notebook. Checks print and return ``None``
(a returned value would add a second output, and nbval runs cells without
history, where a trailing ``;`` does not silence it). The grader
(``aigc_course.teaching.grading``) calls ``evaluate`` on the learner's objects instead of
trusting printed text.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from aigc_course import metrics as _metrics
from aigc_course.models.gan import (discriminator_loss, generator_loss_nonsaturating,
                                    mode_counts, ring_centres)
from aigc_course.models.style import gram_matrix as _gram_matrix
from aigc_course.models.style import style_loss as _style_loss
from aigc_course.models.style import total_variation as _total_variation
from aigc_course.models.vae import kl_to_standard_normal, reparameterize


def verdict_line(exercise: str, title: str, ok: bool, hint: str = "") -> str:
    """``Exercise <id> <title>: correct`` or ``Exercise <id> <title>: not yet - <hint>``."""
    return f"Exercise {exercise} {title}: " + ("correct" if ok else f"not yet - {hint}")


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it lives, the function the learner writes, and how to test it."""

    id: str
    title: str
    notebook: str   # file stem of the lesson, e.g. "01_vae"
    function: str   # the name the learner's solution cell defines
    hint: str
    case: Callable[[], tuple[tuple, torch.Tensor]]  # () -> (inputs, expected output)

    def evaluate(self, answer: Callable) -> tuple[bool, str]:
        """Run ``answer`` on this exercise's inputs; return (correct?, verdict line)."""
        args, _ = self.case()
        try:
            got = answer(*args)
        except Exception as err:  # the learner's code raised: judged below, in one line
            got = err
        return self.judge(got)

    def judge(self, got) -> tuple[bool, str]:
        """Verdict for what the learner's function returned (or the exception it raised)."""
        _, expected = self.case()
        if isinstance(got, NotImplementedError):
            return self._result(False, "the exercise is not done yet (replace `raise NotImplementedError`)")
        if isinstance(got, BaseException):
            return self._result(False, f"your code raised {type(got).__name__}: {got}")
        if not isinstance(got, torch.Tensor):
            return self._result(False, f"return a torch.Tensor, got {type(got).__name__}")
        if got.shape != expected.shape:
            return self._result(False, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}; {self.hint}")
        ok = torch.allclose(got.detach().float(), expected, atol=1e-5, rtol=1e-4)
        return self._result(ok, self.hint)

    def _result(self, ok: bool, hint: str) -> tuple[bool, str]:
        return ok, verdict_line(self.id, self.title, ok, hint)

    def check(self, answer: Callable) -> None:
        """Print the verdict. Under nbgrader's autograder a wrong answer also raises
        ``AssertionError``, because nbgrader scores a test cell by whether it raises."""
        ok, line = self.evaluate(answer)
        print(line)
        if not ok and os.environ.get("NBGRADER_EXECUTION") == "autograde":
            raise AssertionError(line)


def _posterior_case(seed: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)


def _reparameterize_case():
    mu, logvar, eps = _posterior_case()
    return (mu, logvar, eps), reparameterize(mu, logvar, eps)


def _kl_case():
    mu, logvar, _ = _posterior_case()
    return (mu, logvar), kl_to_standard_normal(mu, logvar)


EXERCISES = {e.id: e for e in (
    Exercise("1.1", "reparameterisation", "01_vae", "my_reparameterize",
             "z = mu + sigma * eps, and sigma = exp(logvar / 2), not exp(logvar)", _reparameterize_case),
    Exercise("1.2", "KL divergence", "01_vae", "my_kl",
             "KL = 0.5 * sum over latent dims of (mu^2 + exp(logvar) - 1 - logvar), one value per example",
             _kl_case),
)}


def exercises_for(notebook: str) -> list[Exercise]:
    """The exercises of one lesson notebook (by file stem), in order."""
    return [e for e in EXERCISES.values() if e.notebook == notebook]


def check_reparameterize(answer: Callable) -> None:
    """Exercise 1.1: ``answer(mu, logvar, eps)`` must return mu + exp(logvar / 2) * eps."""
    EXERCISES["1.1"].check(answer)


def check_kl(answer: Callable) -> None:
    """Exercise 1.2: ``answer(mu, logvar)`` must return KL(q || N(0, I)) per example, shape (B,)."""
    EXERCISES["1.2"].check(answer)


# --- Lesson 02: GANs ---


def _logits_case(seed: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, generator=g) * 3, torch.randn(6, generator=g) * 3 - 2


def _d_loss_case():
    real, fake = _logits_case()
    return (real, fake), discriminator_loss(real, fake)


def _g_loss_case():
    _, fake = _logits_case()
    return (fake,), generator_loss_nonsaturating(fake)


def _mode_counts_case():
    g = torch.Generator().manual_seed(5)
    centres = ring_centres(8, 2.0)
    # a half-collapsed sampler: most points near modes 1 and 6, a few near 3, some in between
    which = torch.tensor([1] * 9 + [6] * 7 + [3] * 2)
    near = centres[which] + 0.04 * torch.randn(len(which), 2, generator=g)
    between = 1.2 * torch.randn(5, 2, generator=g)
    samples = torch.cat([near, between])[torch.randperm(len(which) + 5, generator=g)]
    return (samples, centres, 0.05), mode_counts(samples, centres, 0.05).float()


EXERCISES.update({e.id: e for e in (
    Exercise("2.1", "discriminator loss", "02_gan", "my_discriminator_loss",
             "loss = mean(softplus(-real_logits)) + mean(softplus(fake_logits)), i.e. -log D(x) - log(1 - D(G(z))) "
             "with D = sigmoid(logit): one scalar", _d_loss_case),
    Exercise("2.2", "non-saturating generator loss", "02_gan", "my_generator_loss",
             "G minimises -log D(G(z)) = mean(softplus(-fake_logits)), not log(1 - D(G(z))): one scalar",
             _g_loss_case),
    Exercise("2.3", "mode counts", "02_gan", "my_mode_counts",
             "for each sample find the nearest centre (torch.cdist, then min over centres); count it for that "
             "centre only if the distance is <= 3 * std (torch.bincount(..., minlength=K))", _mode_counts_case),
)})


def check_discriminator_loss(answer: Callable) -> None:
    """Exercise 2.1: ``answer(real_logits, fake_logits)`` must return -E[log D(x)] - E[log(1 - D(G(z)))]."""
    EXERCISES["2.1"].check(answer)


def check_generator_loss(answer: Callable) -> None:
    """Exercise 2.2: ``answer(fake_logits)`` must return the non-saturating loss -E[log D(G(z))]."""
    EXERCISES["2.2"].check(answer)


def check_mode_counts(answer: Callable) -> None:
    """Exercise 2.3: ``answer(samples, centres, std)`` must return per-mode counts (K,) within 3 std."""
    EXERCISES["2.3"].check(answer)


# --- Lesson 03: neural style transfer ---


def _feature_case(seed: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 4, 5, 6, generator=g), torch.rand(2, 8, 3, 3, generator=g)]


def _gram_case():
    (features, _) = _feature_case()
    return (features,), _gram_matrix(features)


def _style_loss_case():
    features = _feature_case()
    targets = [_gram_matrix(f.flip(0)) for f in _feature_case(seed=4)]
    return (features, targets), _style_loss(features, targets)


def _tv_case():
    image = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(5))
    return (image,), _total_variation(image)


EXERCISES.update({e.id: e for e in (
    Exercise("3.1", "Gram matrix", "03_style_transfer", "my_gram_matrix",
             "reshape to (B, C, H*W), multiply by its transpose (B, H*W, C) and divide by C*H*W",
             _gram_case),
    Exercise("3.2", "style loss", "03_style_transfer", "my_style_loss",
             "for each layer: mean squared difference between the Gram matrix of the features and the "
             "target Gram matrix; add the layers up", _style_loss_case),
    Exercise("3.3", "total variation", "03_style_transfer", "my_total_variation",
             "mean of squared differences between vertical neighbours plus the same for horizontal ones",
             _tv_case),
)})


def check_gram_matrix(answer: Callable) -> None:
    """Exercise 3.1: ``answer(features)`` (B, C, H, W) -> (B, C, C) Gram matrices divided by C*H*W."""
    EXERCISES["3.1"].check(answer)


def check_style_loss(answer: Callable) -> None:
    """Exercise 3.2: ``answer(features, target_grams)`` -> sum over layers of mse(Gram(F_l), A_l)."""
    EXERCISES["3.2"].check(answer)


def check_total_variation(answer: Callable) -> None:
    """Exercise 3.3: ``answer(image)`` -> mean squared vertical + mean squared horizontal differences."""
    EXERCISES["3.3"].check(answer)


# --- Lesson 04: diffusion ---

def _diffusion_case(seed: int = 11):
    """A small batch (B=4, 1x28x28) with per-example timesteps, a noise draw and a noise prediction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    return x, torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)


def _q_sample_case():
    from aigc_course.models.diffusion import linear_schedule, q_sample

    x0, noise, _ = _diffusion_case()
    abar = linear_schedule().alphas_cumprod
    t = torch.tensor([0, 120, 500, 999])
    return (x0, t, noise, abar), q_sample(linear_schedule(), x0, t, noise)


def _ddpm_step_case():
    from aigc_course.models.diffusion import ddpm_step, linear_schedule

    x_t, eps, z = _diffusion_case(12)
    schedule = linear_schedule()
    t = 600
    args = (x_t, eps, t, schedule.betas, schedule.alphas_cumprod, z)
    return args, ddpm_step(schedule, x_t, eps, t, noise=z, clip=False)


def _ddim_step_case():
    from aigc_course.models.diffusion import ddim_step, linear_schedule

    x_t, eps, _ = _diffusion_case(13)
    schedule = linear_schedule()
    t, t_prev = 700, 680
    args = (x_t, eps, t, t_prev, schedule.alphas_cumprod)
    return args, ddim_step(schedule, x_t, eps, t, t_prev, eta=0.0, clip=False)


EXERCISES.update({e.id: e for e in (
    Exercise("4.1", "q_sample", "04_diffusion", "my_q_sample",
             "x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise, with abar_t = alphas_cumprod[t] reshaped to "
             "(B, 1, 1, 1) so each image gets its own t", _q_sample_case),
    Exercise("4.2", "one DDPM reverse step", "04_diffusion", "my_ddpm_step",
             "x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) * "
             "x0_hat + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) * x_t; add sqrt((1 - abar_{t-1}) / "
             "(1 - abar_t) * beta_t) * z", _ddpm_step_case),
    Exercise("4.3", "DDIM update", "04_diffusion", "my_ddim_step",
             "x0_hat as in 4.2, then x_prev = sqrt(abar_prev) * x0_hat + sqrt(1 - abar_prev) * eps (eta = 0: "
             "no fresh noise)", _ddim_step_case),
)})


def check_q_sample(answer: Callable) -> None:
    """Exercise 4.1: ``answer(x0, t, noise, alphas_cumprod)`` must return x_t ~ q(x_t | x_0) for that noise."""
    EXERCISES["4.1"].check(answer)


def check_ddpm_step(answer: Callable) -> None:
    """Exercise 4.2: ``answer(x_t, eps, t, betas, alphas_cumprod, z)`` must return x_{t-1} (no clipping)."""
    EXERCISES["4.2"].check(answer)


def check_ddim_step(answer: Callable) -> None:
    """Exercise 4.3: ``answer(x_t, eps, t, t_prev, alphas_cumprod)`` must return the eta = 0 DDIM x_{t_prev}."""
    EXERCISES["4.3"].check(answer)


# --- Lesson 05: GPT-2 (causal mask, top-p, LoRA) ---

def _causal_attention_case():
    from aigc_course.models.gpt import attention_manual

    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g) for _ in range(3))  # (B, heads, T, head_dim)
    return (q, k, v), attention_manual(q, k, v)


def _top_p_case():
    from aigc_course.models.gpt import top_p_filter

    g = torch.Generator().manual_seed(6)
    logits = torch.randn(4, 12, generator=g) * 2
    return (logits, 0.8), top_p_filter(logits, 0.8)


def _lora_case():
    from aigc_course.models.lora import lora_forward

    g = torch.Generator().manual_seed(7)
    x, weight, bias = torch.randn(5, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(6, generator=g)
    lora_a, lora_b = torch.randn(2, 8, generator=g), torch.randn(6, 2, generator=g)
    return (x, weight, bias, lora_a, lora_b, 0.5), lora_forward(x, weight, bias, lora_a, lora_b, 0.5)


EXERCISES.update({e.id: e for e in (
    Exercise("5.1", "causal self-attention", "05_gpt2", "my_causal_attention",
             "scores = q @ k^T / sqrt(head_dim); set scores above the diagonal (key after query) to -inf "
             "before the softmax over the last dimension; then multiply by v", _causal_attention_case),
    Exercise("5.2", "top-p (nucleus) filter", "05_gpt2", "my_top_p",
             "sort descending, softmax, keep a token while the probability mass *before* it is < p "
             "(the top token always stays), set the rest to -inf, then undo the sort", _top_p_case),
    Exercise("5.3", "LoRA forward", "05_gpt2", "my_lora_forward",
             "y = x W^T + b + scale * (x A^T) B^T, with A (r, in) and B (out, r)", _lora_case),
)})


def check_causal_attention(answer: Callable) -> None:
    """Exercise 5.1: ``answer(q, k, v)`` must return causal softmax(q k^T / sqrt(d)) v, shape of q."""
    EXERCISES["5.1"].check(answer)


def check_top_p(answer: Callable) -> None:
    """Exercise 5.2: ``answer(logits, p)`` must keep the nucleus of each row and set the rest to -inf."""
    EXERCISES["5.2"].check(answer)


def check_lora_forward(answer: Callable) -> None:
    """Exercise 5.3: ``answer(x, weight, bias, lora_a, lora_b, scale)`` must return the LoRA layer's output."""
    EXERCISES["5.3"].check(answer)


# --- Lessons 06 and 07: evaluation, responsible AIGC ---


def _gaussians_case():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, 4, generator=g, dtype=torch.float64)
    mu1, mu2 = torch.randn(4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    cov1, cov2 = a @ a.T + 0.1 * torch.eye(4, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(4, dtype=torch.float64)
    return (mu1, cov1, mu2, cov2), torch.tensor(_metrics.frechet_distance(mu1, cov1, mu2, cov2), dtype=torch.float32)


def _precision_case():
    g = torch.Generator().manual_seed(61)
    real, fake = torch.randn(60, 3, generator=g), torch.randn(40, 3, generator=g) * 1.5 + 0.5
    precision, _ = _metrics.precision_recall(real, fake, k=3)
    return (real, fake, 3), torch.tensor(precision)


def _z_score_case():
    greens, total, gamma = torch.tensor([30.0, 50.0, 120.0]), torch.tensor([100.0, 100.0, 200.0]), 0.25
    return (greens, total, gamma), (greens - gamma * total) / torch.sqrt(total * gamma * (1 - gamma))


EXERCISES.update({e.id: e for e in (
    Exercise("6.1", "Fréchet distance", "06_evaluation", "my_frechet_distance",
             "||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)); the last trace is the sum of the "
             "square roots of the eigenvalues of sqrt(cov1) @ cov2 @ sqrt(cov1)", _gaussians_case),
    Exercise("6.2", "k-NN precision", "06_evaluation", "my_precision",
             "radius of each real point = distance to its k-th nearest OTHER real point (torch.cdist, then "
             "sort; column 0 is the point itself); a sample counts if it lies within the radius of any real point",
             _precision_case),
    Exercise("7.1", "watermark z-score", "07_responsible_aigc", "my_z_score",
             "z = (greens - gamma * T) / sqrt(T * gamma * (1 - gamma)), elementwise", _z_score_case),
)})


def check_frechet_distance(answer: Callable) -> None:
    """Exercise 6.1: ``answer(mu1, cov1, mu2, cov2)`` must return the squared Fréchet distance (a scalar tensor)."""
    EXERCISES["6.1"].check(answer)


def check_precision(answer: Callable) -> None:
    """Exercise 6.2: ``answer(real, fake, k)`` must return k-NN precision (a scalar tensor)."""
    EXERCISES["6.2"].check(answer)


def check_z_score(answer: Callable) -> None:
    """Exercise 7.1: ``answer(greens, total, gamma)`` must return the green-list z-scores."""
    EXERCISES["7.1"].check(answer)
