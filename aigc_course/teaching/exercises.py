"""The course's exercises: inputs, the reference answer, and a check that prints one verdict line.

An :class:`Exercise` knows five things: the function a learner writes
(``function``), the package function whose result is the right answer
(``reference``), the fixed inputs the notebook's check uses (``public``), how to
draw more inputs (``hidden``, plus ``edge`` cases), and how to judge
(``run`` calls the learner's function on one input, ``compare`` decides).

* In a notebook, ``check_kl(my_kl)`` runs the learner's function on the public
  inputs and prints exactly one line, ``Exercise 1.2 KL divergence: correct`` or
  ``... not yet - <hint>``, in a cell marked ``# NBVAL_CHECK_OUTPUT``, so
  ``pytest --nbval-lax`` fails exactly where an answer is wrong. Checks print and
  return ``None`` (a returned value would add a second output).
* The grader (:mod:`aigc_course.teaching.grader`) never trusts that line. It
  draws hidden inputs from a seed only it knows, sends them to an isolated
  process that calls the learner's function through ``run``, receives plain
  arrays back, and judges them with ``compare`` against ``reference``, which it
  computes in its own process. In the isolated process every ``reference`` (and
  each name in ``protects``) is replaced by a stub that raises.

A behaviour-graded exercise ("train this step N times, then measure") is the
same five things: ``run`` is the loop (it calls the learner's step N times from
a seeded start and returns the trained weights as a tensor) and ``compare``
measures those weights in the grader (e.g. the loss on held-out data it draws),
so nothing the learner's process says about itself is believed::

    Exercise("9.1", "SGD step", "09_x", "my_sgd_step", "w <- w - lr * grad",
             reference=_sgd_reference, public=_sgd_public, hidden=_sgd_hidden,
             run=_train_20_steps, compare=_heldout_loss_below(0.1))
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

GRADING_ENV = "AIGC_GRADING"  # set in the grader's isolated process: checks print no verdict there


def verdict_line(exercise: str, title: str, ok: bool, hint: str = "") -> str:
    """``Exercise <id> <title>: correct`` or ``Exercise <id> <title>: not yet - <hint>``."""
    return f"Exercise {exercise} {title}: " + ("correct" if ok else f"not yet - {hint}")


def call(answer: Callable, args: tuple):
    """The default ``run``: the learner's function on one input."""
    return answer(*args)


def close(got: torch.Tensor, expected: torch.Tensor, args: tuple = ()) -> bool:
    """The default ``compare``: equal within atol 1e-5, rtol 1e-4 (infinities must match)."""
    return bool(torch.allclose(got.detach().double(), expected.detach().double(), atol=1e-5, rtol=1e-4))


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it lives, the function the learner writes, its inputs and how to judge it."""

    id: str
    title: str
    notebook: str   # file stem of the lesson, e.g. "01_vae"
    function: str   # the name the learner's solution cell defines
    hint: str
    reference: Callable               # reference(*inputs) -> the right answer (a tensor)
    public: Callable[[], tuple]       # () -> the inputs the notebook's check uses
    hidden: Callable[[torch.Generator], tuple] | None = None  # one draw of hidden inputs
    edge: tuple[Callable[[], tuple], ...] = ()  # fixed edge cases the grader adds
    run: Callable = call              # (answer, inputs) -> tensor; runs where the learner's code runs
    compare: Callable = close         # (got, expected, inputs) -> bool; runs in the grader
    protects: tuple[str, ...] = ()    # "module:function" names also unavailable while grading

    def case(self) -> tuple[tuple, torch.Tensor]:
        """The public inputs and the reference answer on them."""
        args = self.public()
        return args, self.reference(*args)

    def grading_inputs(self, seed: int, draws: int = 3) -> list[tuple]:
        """The inputs the grader uses: the public case, the edge cases and ``draws`` hidden draws from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        hidden = [self.hidden(g) for _ in range(draws)] if self.hidden else []
        return [self.public(), *(make() for make in self.edge), *hidden]

    def references(self) -> tuple[str, ...]:
        """Every "module:function" that is this exercise's answer (stubbed out while grading)."""
        own = f"{self.reference.__module__}:{self.reference.__name__}"
        return (own, *self.protects)

    def evaluate(self, answer: Callable) -> tuple[bool, str]:
        """Run ``answer`` on the public inputs; return (correct?, verdict line)."""
        args, expected = self.case()
        try:
            got = self.run(answer, args)
        except Exception as err:  # the learner's code raised: judged below, in one line
            got = err
        return self.judge(got, expected, args)

    def judge(self, got, expected=None, args: tuple | None = None) -> tuple[bool, str]:
        """Verdict for what the learner's function returned (or the exception it raised)."""
        if expected is None:
            args, expected = self.case()
        if isinstance(got, NotImplementedError):
            return self._result(False, "the exercise is not done yet (replace `raise NotImplementedError`)")
        if isinstance(got, BaseException):
            return self._result(False, f"your code raised {type(got).__name__}: {got}")
        if not isinstance(got, torch.Tensor):
            return self._result(False, f"return a torch.Tensor, got {type(got).__name__}")
        if got.shape != expected.shape:
            return self._result(False, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}; {self.hint}")
        return self._result(self.compare(got, expected, args), self.hint)

    def _result(self, ok: bool, hint: str) -> tuple[bool, str]:
        return ok, verdict_line(self.id, self.title, ok, hint)

    def check(self, answer: Callable) -> None:
        """Print the verdict. Under nbgrader's autograder a wrong answer also raises
        ``AssertionError``, because nbgrader scores a test cell by whether it raises.
        In the grader's isolated process it prints that the grader checks it instead."""
        if os.environ.get(GRADING_ENV) == "1":
            print(f"Exercise {self.id} {self.title}: checked by the grader")
            return
        ok, line = self.evaluate(answer)
        print(line)
        if not ok and os.environ.get("NBGRADER_EXECUTION") == "autograde":
            raise AssertionError(line)


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


def _size(g: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high], drawn from ``g`` (hidden inputs vary their shapes too)."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


# --- Lesson 01: VAE ---


def _posterior_case(seed: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)


def _posterior_hidden(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, d = _size(g, 1, 9), _size(g, 1, 8)
    return _randn(g, b, d, scale=2.0), _randn(g, b, d, scale=2.0), _randn(g, b, d)


EXERCISES = {e.id: e for e in (
    Exercise("1.1", "reparameterisation", "01_vae", "my_reparameterize",
             "z = mu + sigma * eps, and sigma = exp(logvar / 2), not exp(logvar)",
             reference=reparameterize, public=_posterior_case, hidden=_posterior_hidden,
             edge=(lambda: (torch.zeros(1, 4), torch.zeros(1, 4), torch.ones(1, 4)),)),
    Exercise("1.2", "KL divergence", "01_vae", "my_kl",
             "KL = 0.5 * sum over latent dims of (mu^2 + exp(logvar) - 1 - logvar), one value per example",
             reference=kl_to_standard_normal, public=lambda: _posterior_case()[:2],
             hidden=lambda g: _posterior_hidden(g)[:2],
             edge=(lambda: (torch.zeros(3, 2), torch.zeros(3, 2)),       # the prior itself: KL = 0
                   lambda: (torch.ones(1, 6), torch.full((1, 6), -2.0)))),
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


def _logits_hidden(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return _randn(g, _size(g, 1, 12), scale=4.0), _randn(g, _size(g, 1, 12), scale=4.0) - 1


def _mode_counts_public():
    g = torch.Generator().manual_seed(5)
    centres = ring_centres(8, 2.0)
    # a half-collapsed sampler: most points near modes 1 and 6, a few near 3, some in between
    which = torch.tensor([1] * 9 + [6] * 7 + [3] * 2)
    near = centres[which] + 0.04 * torch.randn(len(which), 2, generator=g)
    between = 1.2 * torch.randn(5, 2, generator=g)
    samples = torch.cat([near, between])[torch.randperm(len(which) + 5, generator=g)]
    return samples, centres, 0.05


def _mode_counts_hidden(g: torch.Generator):
    k, std = _size(g, 3, 10), 0.05 + 0.1 * float(torch.rand(1, generator=g))
    centres = ring_centres(k, 2.0)
    which = torch.randint(0, k, (_size(g, 5, 40),), generator=g)
    near = centres[which] + std * torch.randn(len(which), 2, generator=g)  # some within 3 std, some not
    return torch.cat([near, _randn(g, 4, 2, scale=1.5)]), centres, std


def _mode_counts_reference(samples, centres, std):
    return mode_counts(samples, centres, std).float()


EXERCISES.update({e.id: e for e in (
    Exercise("2.1", "discriminator loss", "02_gan", "my_discriminator_loss",
             "loss = mean(softplus(-real_logits)) + mean(softplus(fake_logits)), i.e. -log D(x) - log(1 - D(G(z))) "
             "with D = sigmoid(logit): one scalar",
             reference=discriminator_loss, public=_logits_case, hidden=_logits_hidden),
    Exercise("2.2", "non-saturating generator loss", "02_gan", "my_generator_loss",
             "G minimises -log D(G(z)) = mean(softplus(-fake_logits)), not log(1 - D(G(z))): one scalar",
             reference=generator_loss_nonsaturating, public=lambda: _logits_case()[1:],
             hidden=lambda g: _logits_hidden(g)[1:], edge=(lambda: (torch.tensor([-30.0, 0.0, 30.0]),),)),
    Exercise("2.3", "mode counts", "02_gan", "my_mode_counts",
             "for each sample find the nearest centre (torch.cdist, then min over centres); count it for that "
             "centre only if the distance is <= 3 * std (torch.bincount(..., minlength=K))",
             reference=_mode_counts_reference, public=_mode_counts_public, hidden=_mode_counts_hidden,
             protects=("aigc_course.models.gan:mode_counts",)),
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


def _features_hidden(g: torch.Generator, layers: int) -> list[torch.Tensor]:
    b = _size(g, 1, 3)
    return [torch.rand(b, _size(g, 1, 8), _size(g, 1, 6), _size(g, 1, 6), generator=g) for _ in range(layers)]


def _style_loss_public():
    return _feature_case(), [_gram_matrix(f.flip(0)) for f in _feature_case(seed=4)]


def _style_loss_hidden(g: torch.Generator):
    features = _features_hidden(g, _size(g, 1, 3))
    targets = [_gram_matrix(torch.rand(f.shape, generator=g)) for f in features]
    return features, targets


def _image_hidden(g: torch.Generator):
    return (torch.rand(_size(g, 1, 3), _size(g, 1, 3), _size(g, 2, 9), _size(g, 2, 9), generator=g),)


EXERCISES.update({e.id: e for e in (
    Exercise("3.1", "Gram matrix", "03_style_transfer", "my_gram_matrix",
             "reshape to (B, C, H*W), multiply by its transpose (B, H*W, C) and divide by C*H*W",
             reference=_gram_matrix, public=lambda: (_feature_case()[0],),
             hidden=lambda g: (_features_hidden(g, 1)[0],)),
    Exercise("3.2", "style loss", "03_style_transfer", "my_style_loss",
             "for each layer: mean squared difference between the Gram matrix of the features and the "
             "target Gram matrix; add the layers up",
             reference=_style_loss, public=_style_loss_public, hidden=_style_loss_hidden),
    Exercise("3.3", "total variation", "03_style_transfer", "my_total_variation",
             "mean of squared differences between vertical neighbours plus the same for horizontal ones",
             reference=_total_variation,
             public=lambda: (torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(5)),),
             hidden=_image_hidden, edge=(lambda: (torch.ones(1, 1, 4, 4),),)),
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


# --- Lesson 04: diffusion (the linear schedule of 1000 steps throughout) ---

def _diffusion_case(seed: int = 11):
    """A small batch (B=4, 1x28x28) with per-example timesteps, a noise draw and a noise prediction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    return x, torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)


def _images_hidden(g: torch.Generator, n: int) -> list[torch.Tensor]:
    shape = (_size(g, 1, 4), _size(g, 1, 2), _size(g, 2, 8), _size(g, 2, 8))
    return [torch.rand(shape, generator=g) * 2 - 1] + [torch.randn(shape, generator=g) for _ in range(n - 1)]


def _schedule():
    from aigc_course.models.diffusion import linear_schedule

    return linear_schedule()


def _q_sample_reference(x0, t, noise, alphas_cumprod):
    from aigc_course.models.diffusion import q_sample

    return q_sample(_schedule(), x0, t, noise)


def _q_sample_public():
    x0, noise, _ = _diffusion_case()
    return x0, torch.tensor([0, 120, 500, 999]), noise, _schedule().alphas_cumprod


def _q_sample_hidden(g: torch.Generator):
    x0, noise = _images_hidden(g, 2)
    return x0, torch.randint(0, 1000, (len(x0),), generator=g), noise, _schedule().alphas_cumprod


def _ddpm_reference(x_t, eps, t, betas, alphas_cumprod, z):
    from aigc_course.models.diffusion import ddpm_step

    return ddpm_step(_schedule(), x_t, eps, t, noise=z, clip=False)


def _ddpm_public():
    x_t, eps, z = _diffusion_case(12)
    return x_t, eps, 600, _schedule().betas, _schedule().alphas_cumprod, z


def _ddpm_hidden(g: torch.Generator):
    x_t, eps, z = _images_hidden(g, 3)
    return x_t, eps, _size(g, 1, 999), _schedule().betas, _schedule().alphas_cumprod, z


def _ddim_reference(x_t, eps, t, t_prev, alphas_cumprod):
    from aigc_course.models.diffusion import ddim_step

    return ddim_step(_schedule(), x_t, eps, t, t_prev, eta=0.0, clip=False)


def _ddim_public():
    x_t, eps, _ = _diffusion_case(13)
    return x_t, eps, 700, 680, _schedule().alphas_cumprod


def _ddim_hidden(g: torch.Generator):
    x_t, eps = _images_hidden(g, 2)
    t = _size(g, 60, 999)
    return x_t, eps, t, t - _size(g, 1, 50), _schedule().alphas_cumprod


EXERCISES.update({e.id: e for e in (
    Exercise("4.1", "q_sample", "04_diffusion", "my_q_sample",
             "x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise, with abar_t = alphas_cumprod[t] reshaped to "
             "(B, 1, 1, 1) so each image gets its own t",
             reference=_q_sample_reference, public=_q_sample_public, hidden=_q_sample_hidden,
             protects=("aigc_course.models.diffusion:q_sample",)),
    Exercise("4.2", "one DDPM reverse step", "04_diffusion", "my_ddpm_step",
             "x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) * "
             "x0_hat + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) * x_t; add sqrt((1 - abar_{t-1}) / "
             "(1 - abar_t) * beta_t) * z",
             reference=_ddpm_reference, public=_ddpm_public, hidden=_ddpm_hidden,
             protects=("aigc_course.models.diffusion:ddpm_step",)),
    Exercise("4.3", "DDIM update", "04_diffusion", "my_ddim_step",
             "x0_hat as in 4.2, then x_prev = sqrt(abar_prev) * x0_hat + sqrt(1 - abar_prev) * eps (eta = 0: "
             "no fresh noise)",
             reference=_ddim_reference, public=_ddim_public, hidden=_ddim_hidden,
             protects=("aigc_course.models.diffusion:ddim_step",)),
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

def _attention_reference(q, k, v):
    from aigc_course.models.gpt import attention_manual

    return attention_manual(q, k, v)


def _attention_public():
    g = torch.Generator().manual_seed(5)
    return tuple(torch.randn(2, 3, 6, 4, generator=g) for _ in range(3))  # (B, heads, T, head_dim)


def _attention_hidden(g: torch.Generator):
    shape = (_size(g, 1, 3), _size(g, 1, 4), _size(g, 1, 9), _size(g, 1, 8))
    return tuple(torch.randn(shape, generator=g) for _ in range(3))


def _top_p_reference(logits, p):
    from aigc_course.models.gpt import top_p_filter

    return top_p_filter(logits, p)


def _top_p_hidden(g: torch.Generator):
    return _randn(g, _size(g, 1, 5), _size(g, 2, 20), scale=2.5), round(0.3 + 0.65 * float(torch.rand(1, generator=g)), 3)


def _lora_reference(x, weight, bias, lora_a, lora_b, scale):
    from aigc_course.models.lora import lora_forward

    return lora_forward(x, weight, bias, lora_a, lora_b, scale)


def _lora_public():
    g = torch.Generator().manual_seed(7)
    x, weight, bias = torch.randn(5, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(6, generator=g)
    lora_a, lora_b = torch.randn(2, 8, generator=g), torch.randn(6, 2, generator=g)
    return x, weight, bias, lora_a, lora_b, 0.5


def _lora_hidden(g: torch.Generator):
    n, d_in, d_out, r = _size(g, 1, 6), _size(g, 2, 10), _size(g, 2, 10), _size(g, 1, 4)
    return (_randn(g, n, d_in), _randn(g, d_out, d_in), _randn(g, d_out), _randn(g, r, d_in), _randn(g, d_out, r),
            round(0.1 + 2 * float(torch.rand(1, generator=g)), 3))


EXERCISES.update({e.id: e for e in (
    Exercise("5.1", "causal self-attention", "05_gpt2", "my_causal_attention",
             "scores = q @ k^T / sqrt(head_dim); set scores above the diagonal (key after query) to -inf "
             "before the softmax over the last dimension; then multiply by v",
             reference=_attention_reference, public=_attention_public, hidden=_attention_hidden,
             protects=("aigc_course.models.gpt:attention_manual",)),
    Exercise("5.2", "top-p (nucleus) filter", "05_gpt2", "my_top_p",
             "sort descending, softmax, keep a token while the probability mass *before* it is < p "
             "(the top token always stays), set the rest to -inf, then undo the sort",
             reference=_top_p_reference, public=lambda: (torch.randn(4, 12, generator=torch.Generator()
                                                                     .manual_seed(6)) * 2, 0.8),
             hidden=_top_p_hidden, protects=("aigc_course.models.gpt:top_p_filter",)),
    Exercise("5.3", "LoRA forward", "05_gpt2", "my_lora_forward",
             "the frozen linear layer's output plus the adapter path times scale; the adapter path takes x "
             "from in to r numbers with A (r, in), then to out with B (out, r): mind each transpose",
             reference=_lora_reference, public=_lora_public, hidden=_lora_hidden,
             protects=("aigc_course.models.lora:lora_forward",)),
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


# Lesson 05, continued: a whole Transformer block, and predictions committed before the result is shown.

_BLOCK_NAMES = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                "mlp.c_proj.weight", "mlp.c_proj.bias")


def _block_weights(g: torch.Generator, c: int) -> list[torch.Tensor]:
    """Random float64 weights for a block of width ``c``, in ``_BLOCK_NAMES`` order (LayerNorm gains near 1)."""
    shapes = {"ln_1.weight": (c,), "ln_1.bias": (c,), "attn.c_attn.weight": (3 * c, c), "attn.c_attn.bias": (3 * c,),
              "attn.c_proj.weight": (c, c), "attn.c_proj.bias": (c,), "ln_2.weight": (c,), "ln_2.bias": (c,),
              "mlp.c_fc.weight": (4 * c, c), "mlp.c_fc.bias": (4 * c,), "mlp.c_proj.weight": (c, 4 * c),
              "mlp.c_proj.bias": (c,)}
    weights = []
    for name in _BLOCK_NAMES:
        w = torch.randn(shapes[name], generator=g, dtype=torch.float64)
        weights.append(1 + 0.2 * w if name.startswith("ln") and name.endswith("weight") else
                       0.3 * w if name.endswith("bias") else w / shapes[name][1] ** 0.5)
    return weights


def _block_reference(x, weights, n_head):
    """The package's ``Block`` with these weights loaded (float64, eval mode), applied to ``x``."""
    from aigc_course.models.gpt import Block, GPTConfig

    block = Block(GPTConfig(n_embd=x.shape[-1], n_head=n_head, attention="sdpa")).double().eval()
    block.load_state_dict(dict(zip(_BLOCK_NAMES, weights)))
    with torch.no_grad():
        return block(x.double())


def _block_run(answer: Callable, args: tuple):
    """The learner's block gets the same weights as a dict named like ``Block.state_dict()``."""
    x, weights, n_head = args
    return answer(x, dict(zip(_BLOCK_NAMES, weights)), int(n_head))


def _block_public():
    g = torch.Generator().manual_seed(52)
    return torch.randn(2, 5, 8, generator=g, dtype=torch.float64) * 2, _block_weights(g, 8), 2


def _block_hidden(g: torch.Generator):
    n_head = _size(g, 1, 4)
    c = n_head * _size(g, 1, 4)
    x = torch.randn(_size(g, 1, 3), _size(g, 1, 9), c, generator=g, dtype=torch.float64) * 2
    return x, _block_weights(g, c), n_head


def _committed_answer(answer: Callable, args: tuple) -> torch.Tensor:
    """``run`` of a prediction: the learner's function returns a letter ("B") or a number; sent as a tensor."""
    value = answer()
    if isinstance(value, str):
        letter = value.strip().upper()
        if len(letter) != 1 or not letter.isalpha():
            raise ValueError(f"answer with one letter, got {value!r}")
        return torch.tensor([float(ord(letter))], dtype=torch.float64)
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"answer with a letter in quotes or a number, got {type(value).__name__}")
    return torch.tensor([float(value)], dtype=torch.float64)


def _choice(letter: str) -> torch.Tensor:
    return torch.tensor([float(ord(letter))], dtype=torch.float64)


def _within(share: float) -> Callable:
    """``compare`` of a numeric prediction: right within a relative tolerance."""
    def compare(got, expected, args) -> bool:
        return bool((got - expected).abs().item() <= share * expected.abs().item())
    return compare


def _prediction(id: str, title: str, notebook: str, function: str, hint: str, reference: Callable,
                compare: Callable = close) -> Exercise:
    """A "predict, then run" question: no inputs, the learner's committed answer is judged."""
    return Exercise(id, title, notebook, function, hint, reference=reference, public=lambda: (),
                    run=_committed_answer, compare=compare)


def _answer_5_5():
    return _choice("A")   # the cache stores keys and values that would be recomputed identically


def _answer_5_6():
    # gpt_char: 4 layers, n_embd 128; rank 8 on c_attn (128 -> 384) and c_proj (128 -> 128): r * (in + out) each
    return torch.tensor([4 * (8 * (128 + 384) + 8 * (128 + 128))], dtype=torch.float64)


EXERCISES.update({e.id: e for e in (
    Exercise("5.4", "Transformer block", "05_gpt2", "my_block",
             "pre-norm: LayerNorm first, then attention or MLP, then add the input back (twice); the MLP is "
             "Linear(C, 4C), GELU with the tanh approximation, Linear(4C, C); heads are C // n_head wide",
             reference=_block_reference, public=_block_public, hidden=_block_hidden, run=_block_run),
    _prediction("5.5", "prediction: the KV cache", "05_gpt2", "my_prediction_kv_cache",
                "does a key or value of an earlier position depend on tokens that come after it?",
                reference=_answer_5_5),
    _prediction("5.6", "prediction: LoRA's trainable parameters", "05_gpt2", "my_prediction_lora_parameters",
                "each adapted matrix (out, in) gets A (r, in) and B (out, r); count them for c_attn and c_proj "
                "in each of the 4 layers (n_embd = 128)", reference=_answer_5_6, compare=_within(0.02)),
)})


def check_block(answer: Callable) -> None:
    """Exercise 5.4: ``answer(x, weights, n_head)`` must equal the package's ``Block`` with those weights."""
    EXERCISES["5.4"].check(answer)


def check_prediction_kv_cache(answer: Callable) -> None:
    """Exercise 5.5: the letter the learner predicted for greedy decoding with and without the KV cache."""
    EXERCISES["5.5"].check(answer)


def check_prediction_lora_parameters(answer: Callable) -> None:
    """Exercise 5.6: the learner's count of the LoRA adapter's trainable parameters (within 2%)."""
    EXERCISES["5.6"].check(answer)


# Lesson 05: one training step of a GPT, judged by the held-out loss after 50 steps with it.

_STEP_CONFIG = dict(block_size=16, n_layer=1, n_head=2, n_embd=32)


def _markov_chain(g: torch.Generator, vocab: int) -> torch.Tensor:
    """A random next-token table (vocab, vocab): each row a peaked distribution, so there is much to learn."""
    return torch.softmax(3 * torch.randn(vocab, vocab, generator=g, dtype=torch.float64), dim=1)


def _markov_text(table: torch.Tensor, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    tokens = [0]
    for _ in range(length - 1):
        tokens.append(int(torch.multinomial(table[tokens[-1]], 1, generator=g)))
    return torch.tensor(tokens)


def _tiny_gpt(vocab: int):
    from aigc_course.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, **_STEP_CONFIG))


def _train_50_steps(step: Callable, args: tuple) -> torch.Tensor:
    """A tiny GPT from a fixed start, 50 calls of ``step`` on 8 random windows of (T + 1) tokens; its weights."""
    table, tokens = args
    model = _tiny_gpt(len(table))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    span = _STEP_CONFIG["block_size"] + 1
    model.train()
    for _ in range(50):
        starts = torch.randint(0, len(tokens) - span, (8,), generator=g)
        step(model, optimizer, torch.stack([tokens[s:s + span] for s in starts.tolist()]))
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _gpt_step_by_reference(model, optimizer, batch):
    _, loss = model(batch[:, :-1], batch[:, 1:])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def _gpt_training_reference(table, tokens):
    return _train_50_steps(_gpt_step_by_reference, (table, tokens))


def _heldout_lm_loss(weights: torch.Tensor, table: torch.Tensor) -> float:
    model = _tiny_gpt(len(table))
    torch.nn.utils.vector_to_parameters(weights.float(), model.parameters())
    text = _markov_text(table, 16 * 17, seed=2028).view(16, 17)   # held-out text, drawn here in the grader
    with torch.no_grad():
        return float(model.eval()(text[:, :-1], text[:, 1:])[1])


def _heldout_loss_close_to_reference(got, expected, args) -> bool:
    """Held-out next-token loss within 0.05 nats of the reference step's (it starts at about ln(vocab))."""
    if not torch.isfinite(got).all():
        return False
    return _heldout_lm_loss(got, args[0]) <= _heldout_lm_loss(expected, args[0]) + 0.05


def _gpt_step_case(g: torch.Generator, vocab: int, seed: int):
    table = _markov_chain(g, vocab)
    return table, _markov_text(table, 600, seed)


EXERCISES.update({e.id: e for e in (
    Exercise("5.7", "GPT training step", "05_gpt2", "my_train_step",
             "inputs are the first T tokens of each window, targets the last T (shifted by one); cross-entropy "
             "over all B*T positions; clear old gradients, backward, then let the optimiser step",
             reference=_gpt_training_reference,
             public=lambda: _gpt_step_case(torch.Generator().manual_seed(57), 8, 0),
             hidden=lambda g: _gpt_step_case(g, _size(g, 4, 12), _size(g, 0, 10_000)),
             run=_train_50_steps, compare=_heldout_loss_close_to_reference),
)})


def check_train_step(answer: Callable) -> None:
    """Exercise 5.7: ``answer(model, optimizer, batch)`` (batch (B, T + 1) tokens) must do one training step."""
    EXERCISES["5.7"].check(answer)


# --- Lessons 06 and 07: evaluation, responsible AIGC ---


def _gaussians(g: torch.Generator, d: int):
    a, b = (torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(2))
    mu1, mu2 = (torch.randn(d, generator=g, dtype=torch.float64) for _ in range(2))
    eye = torch.eye(d, dtype=torch.float64)
    return mu1, a @ a.T + 0.1 * eye, mu2, b @ b.T + 0.1 * eye


def _frechet_reference(mu1, cov1, mu2, cov2):
    return torch.tensor(_metrics.frechet_distance(mu1, cov1, mu2, cov2), dtype=torch.float32)


def _precision_reference(real, fake, k):
    precision, _ = _metrics.precision_recall(real, fake, k=k)
    return torch.tensor(precision)


def _precision_public():
    g = torch.Generator().manual_seed(61)
    return torch.randn(60, 3, generator=g), torch.randn(40, 3, generator=g) * 1.5 + 0.5, 3


def _precision_hidden(g: torch.Generator):
    d = _size(g, 1, 5)
    return _randn(g, _size(g, 20, 60), d), _randn(g, _size(g, 10, 40), d, scale=1.5) + 0.5, _size(g, 1, 5)


def _z_score_reference(greens, total, gamma):
    return (greens - gamma * total) / torch.sqrt(total * gamma * (1 - gamma))


def _z_score_hidden(g: torch.Generator):
    total = torch.randint(20, 400, (_size(g, 1, 6),), generator=g).double()
    return (total * torch.rand(total.shape, generator=g, dtype=torch.float64)).round(), total, \
        round(0.1 + 0.4 * float(torch.rand(1, generator=g)), 3)


EXERCISES.update({e.id: e for e in (
    Exercise("6.1", "Fréchet distance", "06_evaluation", "my_frechet_distance",
             "||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)); the last trace is the sum of the "
             "square roots of the eigenvalues of sqrt(cov1) @ cov2 @ sqrt(cov1)",
             reference=_frechet_reference, public=lambda: _gaussians(torch.Generator().manual_seed(6), 4),
             hidden=lambda g: _gaussians(g, _size(g, 1, 6)),
             protects=("aigc_course.metrics.images:frechet_distance",)),
    Exercise("6.2", "k-NN precision", "06_evaluation", "my_precision",
             "radius of each real point = distance to its k-th nearest OTHER real point (torch.cdist, then "
             "sort; column 0 is the point itself); a sample counts if it lies within the radius of any real point",
             reference=_precision_reference, public=_precision_public, hidden=_precision_hidden,
             protects=("aigc_course.metrics.images:precision_recall",)),
    Exercise("7.1", "watermark z-score", "07_responsible_aigc", "my_z_score",
             "z = (greens - gamma * T) / sqrt(T * gamma * (1 - gamma)), elementwise",
             reference=_z_score_reference,
             public=lambda: (torch.tensor([30.0, 50.0, 120.0]), torch.tensor([100.0, 100.0, 200.0]), 0.25),
             hidden=_z_score_hidden),
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


# Lessons 06 and 07, continued: FID from raw features, a detector trained by the learner, predictions.

def _fid_reference(real, fake):
    (mu1, cov1), (mu2, cov2) = _metrics.feature_statistics(real), _metrics.feature_statistics(fake)
    d = len(mu1)  # feature_statistics returns a 0-d covariance for D = 1 (torch.cov of one variable)
    return torch.tensor(_metrics.frechet_distance(mu1, cov1.reshape(d, d), mu2, cov2.reshape(d, d)),
                        dtype=torch.float64)


def _fid_close(got, expected, args) -> bool:
    """Within 1e-6 relative or 1e-6 absolute: rank-deficient covariances leave round-off in the square root."""
    return bool((got.double() - expected).abs().item() <= 1e-6 + 1e-6 * expected.abs().item())


def _features_pair(g: torch.Generator, n: int, m: int, d: int):
    mix = torch.randn(d, d, generator=g, dtype=torch.float64)
    real = torch.randn(n, d, generator=g, dtype=torch.float64) @ mix
    fake = torch.randn(m, d, generator=g, dtype=torch.float64) @ (mix * 1.3) + 0.5
    return real, fake


def _fid_hidden(g: torch.Generator):
    d = _size(g, 1, 8)
    return _features_pair(g, _size(g, 2, 40), _size(g, 2, 40), d)  # N < D often: rank-deficient covariances


def _fid_identical():
    real, _ = _features_pair(torch.Generator().manual_seed(63), 30, 2, 4)
    return real, real.clone()   # the same set twice: FID 0


def _fid_rank_deficient():
    return _features_pair(torch.Generator().manual_seed(64), 3, 4, 6)  # ranks 2 and 3 in 6 dimensions


def _detector_data(g: torch.Generator, n: int, d: int, gap: float):
    """Real ~ N(m, I), generated ~ N(m + gap * u, I) in ``d`` dimensions, ``u`` a random unit vector,
    ``m`` a common offset of length 3: a linear detector needs its bias. Bayes accuracy Phi(gap / 2)."""
    u = torch.randn(d, generator=g, dtype=torch.float64)
    m = torch.randn(d, generator=g, dtype=torch.float64)
    u, m = u / u.norm(), 3 * m / m.norm()
    real = torch.randn(n, d, generator=g, dtype=torch.float64) + m
    fake = torch.randn(n, d, generator=g, dtype=torch.float64) + m + gap * u
    return real, fake, m, u


def _detector_case(g: torch.Generator, n: int, d: int, gap: float):
    real, fake, m, u = _detector_data(g, n, d, gap)
    return real, fake, 200, 0.5, torch.cat([m, gap * u])   # the last input: what the held-out sets are drawn from


def _train_detector_reference(real, fake, steps, lr, truth=None):
    """Full-batch gradient descent on the logistic loss from zeros; returns (w_1 .. w_D, b)."""
    x = torch.cat([real, fake]).double()
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))]).double()
    params = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    for _ in range(int(steps)):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ params[:-1] + params[-1], y)
        grad, = torch.autograd.grad(loss, params)
        params = (params - lr * grad).detach().requires_grad_(True)
    return params.detach()


def _detector_run(answer: Callable, args: tuple):
    real, fake, steps, lr, _ = args
    w, b = answer(real, fake, int(steps), float(lr))
    return torch.cat([torch.as_tensor(w, dtype=torch.float64).reshape(-1), torch.as_tensor(b, dtype=torch.float64).reshape(1)])


def _balanced_accuracy(params, real, fake) -> float:
    on_real = ((real @ params[:-1] + params[-1]) < 0).double().mean()
    on_fake = ((fake @ params[:-1] + params[-1]) > 0).double().mean()
    return float((on_real + on_fake) / 2)


def _heldout_accuracy_close_to_reference(got, expected, args) -> bool:
    """Balanced accuracy on 4,000 fresh held-out points (drawn here, in the grader) at most 0.03 below the
    reference detector's on the same points. Calibrated: the two agree to about 0.01 when the loop is right."""
    truth = args[4]
    d = len(truth) // 2
    g = torch.Generator().manual_seed(2027)
    real = torch.randn(2000, d, generator=g, dtype=torch.float64) + truth[:d]
    fake = torch.randn(2000, d, generator=g, dtype=torch.float64) + truth[:d] + truth[d:]
    if not torch.isfinite(got).all():
        return False
    return _balanced_accuracy(got.double(), real, fake) >= _balanced_accuracy(expected, real, fake) - 0.03


def _answer_6_4():
    return _choice("C")   # real vs real: 411.7 at N = 50, 13.6 at N = 1000


def _answer_6_5():
    return _choice("A")   # the collapsed generator covers 3 of 8 modes: recall near 3/8


def _answer_7_3():
    return _choice("D")   # JPEG quality 50 leaves the fewest marks found (0.116; blur 0.293)


def _answer_7_4():
    return _choice("B")   # held-out human passages: z from 1.1 to 2.8, none reaches 4


EXERCISES.update({e.id: e for e in (
    Exercise("6.3", "FID from features", "06_evaluation", "my_fid",
             "one mean and one covariance per set (a covariance needs the features of a sample as a column: "
             "check the shape is (D, D), and divide by N - 1), then the Fréchet distance of exercise 6.1",
             reference=_fid_reference, public=lambda: _features_pair(torch.Generator().manual_seed(62), 40, 40, 5),
             hidden=_fid_hidden, edge=(_fid_identical, _fid_rank_deficient), compare=_fid_close,
             protects=("aigc_course.metrics.images:feature_statistics",)),
    _prediction("6.4", "prediction: FID against N", "06_evaluation", "my_prediction_fid_n",
                "a covariance estimated from few samples is noisy; does noise make two estimates look more alike, "
                "or less?", reference=_answer_6_4),
    _prediction("6.5", "prediction: lowest recall", "06_evaluation", "my_prediction_recall",
                "recall asks how much of the real data lies inside the generated samples' balls", reference=_answer_6_5),
    Exercise("7.2", "training a detector", "07_responsible_aigc", "my_train_detector",
             "label real 0 and generated 1; score = x @ w + b; minimise the mean logistic loss "
             "(binary_cross_entropy_with_logits) by gradient descent, starting from zeros, for all the steps",
             reference=_train_detector_reference,
             public=lambda: _detector_case(torch.Generator().manual_seed(71), 100, 4, 2.0),
             hidden=lambda g: _detector_case(g, _size(g, 40, 150), _size(g, 2, 8),
                                             1.5 + 1.5 * float(torch.rand(1, generator=g))),
             run=_detector_run, compare=_heldout_accuracy_close_to_reference),
    _prediction("7.3", "prediction: what erases the watermark", "07_responsible_aigc", "my_prediction_watermark",
                "the mark lives in mid-to-high DCT frequencies: which processing throws away the most of those?",
                reference=_answer_7_3),
    _prediction("7.4", "prediction: human text and the threshold", "07_responsible_aigc",
                "my_prediction_human_text", "without the key's bias a text's green count is Binomial(T, gamma); "
                "how often does a standard normal exceed 4?", reference=_answer_7_4),
)})


def check_fid(answer: Callable) -> None:
    """Exercise 6.3: ``answer(real, fake)`` (N, D) and (M, D) features -> FID as a scalar tensor."""
    EXERCISES["6.3"].check(answer)


def check_prediction_fid_n(answer: Callable) -> None:
    """Exercise 6.4: the letter the learner predicted for real-vs-real FID as N shrinks."""
    EXERCISES["6.4"].check(answer)


def check_prediction_recall(answer: Callable) -> None:
    """Exercise 6.5: the letter of the generator the learner predicts has the lowest recall."""
    EXERCISES["6.5"].check(answer)


def check_train_detector(answer: Callable) -> None:
    """Exercise 7.2: ``answer(real, fake, steps, lr)`` -> (w, b); judged by held-out balanced accuracy."""
    EXERCISES["7.2"].check(answer)


def check_prediction_watermark(answer: Callable) -> None:
    """Exercise 7.3: the letter of the post-processing the learner predicts removes the most watermarks."""
    EXERCISES["7.3"].check(answer)


def check_prediction_human_text(answer: Callable) -> None:
    """Exercise 7.4: the letter the learner predicted for held-out human text against the threshold z = 4."""
    EXERCISES["7.4"].check(answer)
