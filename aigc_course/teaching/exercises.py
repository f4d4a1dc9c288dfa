"""The course's exercises: inputs, the reference answer, and a check that prints one verdict line.

An :class:`Exercise` knows five things: the function a learner writes
(``function``), the package function whose result is the right answer
(``reference``), the fixed inputs the notebook's check uses (``public``), how to
draw more inputs (``hidden``, plus ``edge`` cases), and how to judge
(``run`` calls the learner's function on one input, ``compare`` decides).

* In a notebook, ``check_kl(my_kl)`` runs the learner's function on the public
  inputs and prints exactly one line, ``Exercise 1.2 KL divergence: correct`` or
  ``... not yet - <hint>`` (in the current language: ``练习 1.2 KL 散度：正确``,
  see :mod:`aigc_course.core.i18n`), in a cell marked ``# NBVAL_CHECK_OUTPUT``, so
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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch

from aigc_course import metrics as _metrics
from aigc_course.core.i18n import tr
from aigc_course.models.gan import (discriminator_loss, generator_loss_nonsaturating,
                                    mode_counts, ring_centres)
from aigc_course.models.style import gram_matrix as _gram_matrix
from aigc_course.models.style import style_loss as _style_loss
from aigc_course.models.style import total_variation as _total_variation
from aigc_course.models.vae import kl_to_standard_normal, reparameterize

GRADING_ENV = "AIGC_GRADING"  # set in the grader's isolated process: checks print no verdict there


def verdict_line(exercise: str, title: str, ok: bool, hint: str = "") -> str:
    """``Exercise <id> <title>: correct`` or ``Exercise <id> <title>: not yet - <hint>``, in the current
    language (``title`` and ``hint`` are given already in it)."""
    if ok:
        return tr("Exercise {id} {title}: correct", id=exercise, title=title)
    return tr("Exercise {id} {title}: not yet - {hint}", id=exercise, title=title, hint=hint)


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
    hint: str       # English, the message table's key: a value that may change is a "{field}" filled from hint_fields
    reference: Callable               # reference(*inputs) -> the right answer (a tensor)
    public: Callable[[], tuple]       # () -> the inputs the notebook's check uses
    hidden: Callable[[torch.Generator], tuple] | None = None  # one draw of hidden inputs
    edge: tuple[Callable[[], tuple], ...] = ()  # fixed edge cases the grader adds
    run: Callable = call              # (answer, inputs) -> tensor; runs where the learner's code runs
    compare: Callable = close         # (got, expected, inputs) -> bool; runs in the grader
    protects: tuple[str, ...] = ()    # "module:function" names also unavailable while grading
    # "module:Name" of package classes that would do the exercise but that other exercises' grading runs need
    # (so they cannot be stubbed): the reuse check flags a graded function that mentions them
    mentions: tuple[str, ...] = ()
    hint_fields: tuple[tuple[str, object], ...] = ()  # (name, value) pairs filled into the hint's {fields}

    def title_text(self) -> str:
        """The title as the learner reads it, in the current language."""
        return tr(self.title)

    def hint_text(self) -> str:
        """The hint as the learner reads it: in the current language, with ``hint_fields`` filled in."""
        return tr(self.hint, **dict(self.hint_fields))

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
            return self._result(False, tr("the exercise is not done yet (replace `raise NotImplementedError`)"))
        if isinstance(got, BaseException):
            return self._result(False, tr("your code raised {error}: {message}", error=type(got).__name__,
                                          message=got))
        if not isinstance(got, torch.Tensor):
            return self._result(False, tr("return a torch.Tensor, got {type}", type=type(got).__name__))
        if got.shape != expected.shape:
            return self._result(False, tr("expected shape {expected}, got {got}; {hint}", expected=tuple(expected.shape),
                                          got=tuple(got.shape), hint=self.hint_text()))
        return self._result(self.compare(got, expected, args), self.hint_text())

    def _result(self, ok: bool, hint: str) -> tuple[bool, str]:
        return ok, verdict_line(self.id, self.title_text(), ok, hint)

    def check(self, answer: Callable) -> None:
        """Print the verdict. Under nbgrader's autograder a wrong answer also raises
        ``AssertionError``, because nbgrader scores a test cell by whether it raises.
        In the grader's isolated process it prints that the grader checks it instead."""
        if os.environ.get(GRADING_ENV) == "1":
            print(tr("Exercise {id} {title}: checked by the grader", id=self.id, title=self.title_text()))
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


# Lesson 01, exercise 1.3: a whole VAE training step, graded by what it trains.
# ``run`` trains a small MLP VAE (latent 8, hidden 64) for VAE_STEPS steps of batch 32 with Adam on the
# digits it is given, calling the learner's step; ``compare`` loads the trained weights in the grader and
# measures the negative ELBO of 500 held-out digits. Calibration (tests/test_exercises.py repeats it):
# the reference step reaches 197-200 nats over seeds 0-3, an untrained VAE about 543; a step without
# zero_grad 252-365, one that ascends the loss diverges (> 1e28), one that drops the KL 233-289.
VAE_STEPS, VAE_BATCH, VAE_LR = 150, 32, 3e-3
VAE_STEP_THRESHOLD = 215.0   # nats per held-out digit: the reference's worst seed plus a 15-nat margin


@contextmanager
def _one_thread():
    """Train the exercises' tiny models on one thread (faster than several for them, and fair on a shared
    machine); the caller's thread count comes back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _step_vae(seed: int):
    from aigc_course.models.vae import VAE, VAEConfig

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return VAE(VAEConfig(arch="mlp", latent_dim=8, hidden=64))


def _train_vae_steps(step: Callable, args: tuple) -> torch.Tensor:
    """``run`` of 1.3: VAE_STEPS calls of ``step(model, optimizer, x, eps)``; the trained weights as one vector."""
    x, seed = args
    model, g = _step_vae(int(seed)), torch.Generator().manual_seed(int(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=VAE_LR)
    with _one_thread():
        for _ in range(VAE_STEPS):
            batch = x[torch.randint(len(x), (VAE_BATCH,), generator=g)]
            step(model, optimizer, batch, torch.randn(VAE_BATCH, model.latent_dim, generator=g))
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _vae_reference_step(model, optimizer, x, eps):
    from aigc_course.models.vae import elbo

    loss = elbo(model, x, eps=eps).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _vae_step_reference(x, seed):
    return _train_vae_steps(_vae_reference_step, (x, seed))


def _train_digits(g: torch.Generator, n: int = 256) -> torch.Tensor:
    from aigc_course import load_digits

    train = load_digits("train")
    return train.x[torch.randperm(len(train), generator=g)[:n]]


def heldout_negative_elbo(weights: torch.Tensor) -> float:
    """The negative ELBO (nats per digit) of exercise 1.3's VAE with ``weights`` on 500 held-out digits."""
    from aigc_course import load_digits
    from aigc_course.models.vae import elbo

    model = _step_vae(0)
    torch.nn.utils.vector_to_parameters(weights.float(), model.parameters())
    x = load_digits("test").x[::4]
    with torch.no_grad():
        eps = torch.randn(len(x), model.latent_dim, generator=torch.Generator().manual_seed(123))
        loss = elbo(model, x, eps=eps).loss.item()
    return loss if loss == loss else float("inf")


def _vae_trained_well(got, expected, args) -> bool:
    return bool(torch.isfinite(got).all()) and heldout_negative_elbo(got) < VAE_STEP_THRESHOLD


EXERCISES["1.3"] = Exercise(
    "1.3", "VAE training step", "01_vae", "my_vae_step",
    "after {steps} steps the held-out negative ELBO must fall below {threshold:.0f} nats: the loss is "
    "the batch mean of (reconstruction cross-entropy summed over pixels + KL), minimised (not maximised), and "
    "the gradients of the previous step are cleared before backward",
    hint_fields=(("steps", VAE_STEPS), ("threshold", VAE_STEP_THRESHOLD)),
    reference=_vae_step_reference, public=lambda: (_train_digits(torch.Generator().manual_seed(0)), 0),
    hidden=lambda g: (_train_digits(g), _size(g, 1, 10_000)), run=_train_vae_steps, compare=_vae_trained_well,
    protects=("aigc_course.teaching.exercises:_vae_reference_step", "aigc_course.models.vae:elbo"))


def check_vae_step(answer: Callable) -> None:
    """Exercise 1.3: ``answer(model, optimizer, x, eps)`` must do one step of ELBO training."""
    EXERCISES["1.3"].check(answer)


# Predict-then-run questions and quizzes (lessons 00, 01 and 02). The learner's function returns a
# letter; ``run`` turns it into its index among the allowed letters, and the grader compares that index
# with the right one. The only input is the question's number in ``_CHOICES`` (an int: strings do not
# travel to the grading process).
_CHOICES: list[tuple[str, str]] = []   # (allowed letters, right letter), in the order the questions are made


def _choice_run(answer: Callable, args: tuple) -> torch.Tensor:
    letters = _CHOICES[int(args[0])][0]
    got = answer()
    if not isinstance(got, str) or got.strip().upper() not in tuple(letters):
        raise ValueError(tr("return one letter as a string, one of {letters}; got {got}",
                            letters=", ".join(repr(c) for c in letters), got=repr(got)))
    return torch.tensor(letters.index(got.strip().upper()))


def _choice_reference(question: int) -> torch.Tensor:
    letters, right = _CHOICES[int(question)]
    return torch.tensor(letters.index(right))


def _choice(id: str, title: str, notebook: str, letters: str, right: str, hint: str) -> Exercise:
    _CHOICES.append((letters, right))
    number = len(_CHOICES) - 1
    return Exercise(id, title, notebook, f"my_answer_{id.replace('.', '_')}", hint, reference=_choice_reference,
                    public=lambda: (number,), run=_choice_run)


EXERCISES.update({e.id: e for e in (
    _choice("1.4", "rate as beta grows (prediction)", "01_vae", "ABC", "B",
            "beta multiplies the KL term of the loss: what does the optimiser do to a term that costs more?"),
    _choice("1.5", "IW-NLL against -ELBO (prediction)", "01_vae", "ABC", "C",
            "the ELBO is a lower bound on log p(x), and importance sampling with k = 500 tightens it"),
)})


def check_answer(answer: Callable) -> None:
    """A predict-then-run question or quiz question: ``answer()`` must return the right letter.

    The question is the one whose function is called ``answer.__name__`` (``my_answer_1_4`` is 1.4)."""
    found = [e for e in EXERCISES.values() if e.run is _choice_run and e.function == getattr(answer, "__name__", "")]
    if not found:
        print(verdict_line("?", tr("question"), False,
                           tr("keep the function's name, e.g. {example}", example="my_answer_1_4")))
        return
    found[0].check(answer)


# --- Lesson 00: welcome (a checked quiz) ---

EXERCISES.update({e.id: e for e in (
    _choice("0.1", "which came first (quiz)", "00_welcome", "ABCD", "B",
            "the deep generative families appeared between 2013 and 2015; look at the first of them"),
    _choice("0.2", "not a family (quiz)", "00_welcome", "ABCD", "C",
            "a family of generative models learns a distribution p(x) and samples from it"),
    _choice("0.3", "no weights change (quiz)", "00_welcome", "ABC", "C",
            "one of the three steers the model through its input alone"),
)})


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


# Lesson 02, exercise 2.4: the two GAN updates, graded by the modes the trained generator covers.
# ``run`` trains a small ToyGAN (2 hidden layers of 64) for GAN_STEPS steps of batch 128 on the ring of
# 8 Gaussians (std GAN_RING_STD, so a mode is hit within 3 * 0.2 = 0.6 of its centre), calling the
# learner's step; it returns 2,000 samples from fixed noise, and ``compare`` counts the covered modes in
# the grader (mode_coverage: >= 2% of the samples each). Calibration (measured with these settings): the
# reference covers 8/8 in each of seeds 0-15 (with 400 steps two of them collapsed to 3 modes); in seeds
# 0-2 a step without zero_grad covers 0-2, a generator that ascends its loss 0, a discriminator with real
# and fake swapped 0.
GAN_STEPS, GAN_BATCH, GAN_RING_STD, GAN_MIN_MODES = 700, 128, 0.2, 6


def _train_gan_steps(step: Callable, args: tuple) -> torch.Tensor:
    """``run`` of 2.4: GAN_STEPS calls of ``step(gan, d_opt, g_opt, real, z)``; then 2,000 samples (2000, 2)."""
    from aigc_course.models.gan import ToyGAN, ToyGANConfig, sample_ring

    (seed,) = args
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        toy = ToyGAN(ToyGANConfig(latent_dim=2, hidden=64, layers=2))
    g = torch.Generator().manual_seed(int(seed))
    d_opt = torch.optim.Adam(toy.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(toy.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    with _one_thread():
        for _ in range(GAN_STEPS):
            real = sample_ring(GAN_BATCH, std=GAN_RING_STD, generator=g)
            step(toy, d_opt, g_opt, real, torch.randn(GAN_BATCH, toy.latent_dim, generator=g))
    with torch.no_grad():
        return toy.generate(torch.randn(2000, toy.latent_dim, generator=torch.Generator().manual_seed(99)))


def _gan_reference_step(toy, d_opt, g_opt, real, z):
    fake = toy.generate(z)
    d_loss = discriminator_loss(toy.discriminate(real), toy.discriminate(fake.detach()))
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = generator_loss_nonsaturating(toy.discriminate(fake))
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()


def _gan_step_reference(seed):
    return _train_gan_steps(_gan_reference_step, (seed,))


def modes_covered(samples: torch.Tensor) -> int:
    """How many of the ring's 8 modes hold at least 2% of ``samples`` within 3 std (exercise 2.4's measure)."""
    from aigc_course.models.gan import mode_coverage

    return mode_coverage(samples, ring_centres(8, 2.0), GAN_RING_STD).covered


def _gan_covers_modes(got, expected, args) -> bool:
    return bool(torch.isfinite(got).all()) and modes_covered(got) >= GAN_MIN_MODES


EXERCISES.update({e.id: e for e in (
    Exercise("2.4", "GAN training step", "02_gan", "my_gan_step",
             "after {steps} steps the generator must cover at least {modes} of the 8 modes: D learns "
             "real -> 1 and fake -> 0 on fakes cut from G's graph, then G minimises its non-saturating loss on "
             "D's logits for the same fakes; each player clears its gradients before its own backward",
             hint_fields=(("steps", GAN_STEPS), ("modes", GAN_MIN_MODES)),
             reference=_gan_step_reference, public=lambda: (0,), hidden=lambda g: (_size(g, 1, 10_000),),
             run=_train_gan_steps, compare=_gan_covers_modes,
             protects=("aigc_course.teaching.exercises:_gan_reference_step",)),
    _choice("2.5", "which loss has the gradient (prediction)", "02_gan", "ABC", "B",
            "look at the slope of each loss where D(G(z)) is close to 0"),
    _choice("2.6", "vanilla or R1 (prediction)", "02_gan", "ABC", "A",
            "a smoother D pulls fewer points all the way into a mode: coverage and precision trade against each other"),
)})


def check_gan_step(answer: Callable) -> None:
    """Exercise 2.4: ``answer(gan, d_opt, g_opt, real, z)`` must do one discriminator and one generator update."""
    EXERCISES["2.4"].check(answer)


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


# Predict, then run: the learner commits a letter before the next cell shows the result.

def _letter_index_run(answer: Callable, args: tuple) -> torch.Tensor:
    """Call the learner's ``answer()`` and turn its letter into a number (0 for "A"); anything else raises."""
    letters = "ABCDE"[: int(args[0])]
    got = answer()
    if not (isinstance(got, str) and got.strip().upper() in letters):
        raise ValueError(tr("return one of the letters {letters} as a string", letters=", ".join(letters)))
    return torch.tensor(float(letters.index(got.strip().upper())))


def _letter_prediction(id: str, title: str, notebook: str, function: str, hint: str, reference: Callable, options: int):
    """A predict-then-run question: ``reference(options)`` is the right letter's index as a tensor."""
    return Exercise(id, title, notebook, function, hint, reference=reference, public=lambda: (options,),
                    run=_letter_index_run)


# Lesson 03, continued: the L-BFGS closure, graded by the loss L-BFGS reaches with it. The image is tiny
# (32x32) and the network is VGG19 cut after relu2_1 with seeded random weights (no file to load), so 30
# evaluations take a fraction of a second; what matters is that the closure computes the objective and its
# gradient the way L-BFGS expects.

CLOSURE_CONTENT, CLOSURE_STYLE = ("relu2_1",), ("relu1_1", "relu2_1")
CLOSURE_EVALUATIONS = 30


def tiny_vgg() -> torch.nn.Module:
    """VGGFeatures for relu1_1 and relu2_1 with seeded random weights (same architecture as VGG19's start)."""
    from aigc_course.models.vgg import VGGFeatures, build_vgg19_features

    with torch.random.fork_rng():  # seeded weights, and the caller's random state left as it was
        torch.manual_seed(0)
        state = build_vgg19_features("relu2_1").state_dict()
    return VGGFeatures((*CLOSURE_STYLE, *CLOSURE_CONTENT), state_dict=state)


def _closure_case(g: torch.Generator):
    content, style = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    content = torch.nn.functional.avg_pool2d(content, 5, 1, 2)  # smooth "photo"; style stays a fine texture
    weights = torch.tensor([1.0, 10 ** (3 + 2 * float(torch.rand(1, generator=g))),
                            10 ** (3.5 + float(torch.rand(1, generator=g)))])
    return content, style, torch.rand(1, 3, 32, 32, generator=g), weights


def _lbfgs_run(make_closure: Callable, args: tuple) -> torch.Tensor:
    """Where the learner's code runs: targets once, then one L-BFGS step of at most 30 evaluations with the
    closure ``make_closure`` returns; the final image. (No reference function is called here: the Gram
    matrices of the targets are computed inline.)"""
    content, style, init, weights = args
    vgg = tiny_vgg()

    def extract(x):
        feats = vgg(x)
        return [feats[n] for n in CLOSURE_CONTENT], [feats[n] for n in CLOSURE_STYLE]
    with torch.no_grad():
        content_targets = extract(content)[0]
        flat = [f.flatten(2) for f in extract(style)[1]]
        style_grams = [f @ f.transpose(1, 2) / f[0].numel() for f in flat]
    image = init.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=CLOSURE_EVALUATIONS, max_eval=CLOSURE_EVALUATIONS,
                                  history_size=50, tolerance_grad=1e-9, tolerance_change=1e-12)
    optimizer.step(make_closure(image, optimizer, extract, content_targets, style_grams,
                                tuple(float(w) for w in weights)))
    return image.detach()


def _style_closure_reference(image, optimizer, extract, content_targets, style_grams, weights):
    from aigc_course.models.style import content_loss, style_loss, total_variation

    def closure():
        optimizer.zero_grad()
        content_features, style_features = extract(image)
        loss = weights[0] * content_loss(content_features, content_targets) \
            + weights[1] * style_loss(style_features, style_grams) + weights[2] * total_variation(image)
        loss.backward()
        return loss
    return closure


def _lbfgs_reference(content, style, init, weights):
    return _lbfgs_run(_style_closure_reference, (content, style, init, weights))


def style_objective(image, content, style, weights) -> float:
    """content + style + total variation of ``image`` with the tiny VGG (the package's losses, in the grader)."""
    from aigc_course.models.style import content_loss, gram_matrix, style_loss, total_variation

    vgg = tiny_vgg()
    with torch.no_grad():
        x, c, s = vgg(image), vgg(content), vgg(style)
        return float(weights[0] * content_loss([x[n] for n in CLOSURE_CONTENT], [c[n] for n in CLOSURE_CONTENT])
                     + weights[1] * style_loss([x[n] for n in CLOSURE_STYLE],
                                               [gram_matrix(s[n]) for n in CLOSURE_STYLE])
                     + weights[2] * total_variation(image))


def _loss_within_5_percent(got, expected, args) -> bool:
    if not torch.isfinite(got).all():
        return False
    return style_objective(got, *args[:2], args[3]) <= 1.05 * style_objective(expected, *args[:2], args[3])


def _answer_lbfgs_vs_adam(options):
    return torch.tensor(0.0)   # A: L-BFGS ends lower


def _answer_style_weight(options):
    return torch.tensor(1.0)   # B: the texture takes over


EXERCISES.update({e.id: e for e in (
    Exercise("3.4", "L-BFGS closure", "03_style_transfer", "my_closure",
             "the closure must (1) clear the gradients left by the previous evaluation (the optimizer has a "
             "method for that), (2) compute content + style + total variation weighted by weights in that order "
             "(mean squared error for content, your style loss, your total variation), (3) back-propagate that "
             "loss and (4) return it",
             reference=_lbfgs_reference, public=lambda: _closure_case(torch.Generator().manual_seed(30)),
             hidden=_closure_case, run=_lbfgs_run, compare=_loss_within_5_percent,
             protects=("aigc_course.teaching.exercises:_style_closure_reference",)),
    _letter_prediction("3.5", "predict: L-BFGS or Adam", "03_style_transfer", "my_prediction_optimizer",
                "reread how L-BFGS uses its recent gradients, and what kind of objective this is (smooth, "
                "no mini-batches); then run the next cell", _answer_lbfgs_vs_adam, 3),
    _letter_prediction("3.6", "predict: a large style weight", "03_style_transfer", "my_prediction_style_weight",
                "the optimiser minimises content_weight * content + style_weight * style: which term dominates "
                "when the ratio is 100?", _answer_style_weight, 3),
)})


def check_closure(answer: Callable) -> None:
    """Exercise 3.4: ``answer(image, optimizer, extract, content_targets, style_grams, weights)`` -> a closure;
    graded by the loss 30 L-BFGS evaluations reach with it (within 5% of the reference's)."""
    EXERCISES["3.4"].check(answer)


def check_prediction_optimizer(answer: Callable) -> None:
    """Exercise 3.5: ``answer()`` -> the letter predicted for L-BFGS against Adam."""
    EXERCISES["3.5"].check(answer)


def check_prediction_style_weight(answer: Callable) -> None:
    """Exercise 3.6: ``answer()`` -> the letter predicted for style/content = 100."""
    EXERCISES["3.6"].check(answer)


# --- Lesson 04: diffusion (the linear schedule of 1000 steps throughout) ---

def _diffusion_case(seed: int = 11):
    """A small batch (B=4, 1x28x28) with per-example timesteps, a noise draw and a noise prediction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    return x, torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)


def _images_hidden(g: torch.Generator, n: int) -> list[torch.Tensor]:
    shape = (_size(g, 1, 4), _size(g, 1, 2), _size(g, 2, 8), _size(g, 2, 8))
    return [torch.rand(shape, generator=g) * 2 - 1] + [torch.randn(shape, generator=g) for _ in range(n - 1)]


def _schedule(kind: str = "linear"):
    from aigc_course.models.diffusion import make_schedule

    return make_schedule(kind)


def _given_schedule(betas=None, alphas_cumprod=None):
    """The schedule the inputs carry (the references must use it, not rebuild the linear one): from ``betas``,
    or from ``alphas_cumprod`` through beta_t = 1 - abar_t / abar_{t-1}."""
    from aigc_course.models.diffusion import Schedule

    if betas is None:
        betas = 1 - alphas_cumprod / torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    return Schedule("given", betas)


def _q_sample_reference(x0, t, noise, alphas_cumprod):
    from aigc_course.models.diffusion import q_sample

    return q_sample(_given_schedule(alphas_cumprod=alphas_cumprod), x0, t, noise)


def _q_sample_public():
    x0, noise, _ = _diffusion_case()
    return x0, torch.tensor([0, 120, 500, 999]), noise, _schedule().alphas_cumprod


def _q_sample_hidden(g: torch.Generator):
    x0, noise = _images_hidden(g, 2)
    return x0, torch.randint(0, 1000, (len(x0),), generator=g), noise, _schedule().alphas_cumprod


def _ddpm_reference(x_t, eps, t, betas, alphas_cumprod, z):
    from aigc_course.models.diffusion import ddpm_step

    return ddpm_step(_given_schedule(betas), x_t, eps, t, noise=z, clip=False)


def _ddpm_public():
    x_t, eps, z = _diffusion_case(12)
    return x_t, eps, 600, _schedule().betas, _schedule().alphas_cumprod, z


def _ddpm_hidden(g: torch.Generator):
    x_t, eps, z = _images_hidden(g, 3)
    return x_t, eps, _size(g, 1, 999), _schedule().betas, _schedule().alphas_cumprod, z


def _ddim_reference(x_t, eps, t, t_prev, alphas_cumprod):
    from aigc_course.models.diffusion import ddim_step

    return ddim_step(_given_schedule(alphas_cumprod=alphas_cumprod), x_t, eps, t, t_prev, eta=0.0, clip=False)


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
             edge=(lambda: (*_q_sample_public()[:3], _schedule("cosine").alphas_cumprod),),  # another schedule
             protects=("aigc_course.models.diffusion:q_sample",)),
    Exercise("4.2", "one DDPM reverse step", "04_diffusion", "my_ddpm_step",
             "x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) * "
             "x0_hat + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) * x_t; add sqrt((1 - abar_{t-1}) / "
             "(1 - abar_t) * beta_t) * z",
             reference=_ddpm_reference, public=_ddpm_public, hidden=_ddpm_hidden,
             edge=(lambda: (*_ddpm_public()[:3], _schedule("cosine").betas, _schedule("cosine").alphas_cumprod,
                            _ddpm_public()[5]),),
             protects=("aigc_course.models.diffusion:ddpm_step",)),
    Exercise("4.3", "DDIM update", "04_diffusion", "my_ddim_step",
             "x0_hat as in 4.2, then x_prev = sqrt(abar_prev) * x0_hat + sqrt(1 - abar_prev) * eps (eta = 0: "
             "no fresh noise)",
             reference=_ddim_reference, public=_ddim_public, hidden=_ddim_hidden,
             edge=(lambda: (*_ddim_public()[:4], _schedule("cosine").alphas_cumprod),),
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


# Lesson 04, continued: the training step and the ancestral sampling loop on a 2-D toy whose density is known
# exactly: a mixture of K Gaussians N(mu_k, s^2 I) with weights w_k. Under q(x_t | x_0) every component stays
# Gaussian, N(sqrt(abar_t) mu_k, (abar_t s^2 + 1 - abar_t) I), so the true noise prediction
# eps*(x_t, t) = -sqrt(1 - abar_t) * grad log q_t(x_t) has a closed form: the sampling loop needs no training.


def _toy_schedule(T: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """betas rising linearly so that their sum is ~10 whatever T (abar_T ~ e^-10: pure noise at the end)."""
    betas = torch.linspace(0.1 / T, 19.9 / T, T, dtype=torch.float64)
    return betas, torch.cumprod(1 - betas, 0)


def _toy_mixture(g: torch.Generator, k: int) -> tuple[torch.Tensor, float, torch.Tensor]:
    """K means on a ring of radius 2.5 (rotated at random), a shared std in [0.2, 0.4], uneven weights."""
    angle = 2 * torch.pi * (torch.arange(k, dtype=torch.float64) / k + float(torch.rand(1, generator=g)))
    means = 2.5 * torch.stack([angle.cos(), angle.sin()], 1)
    weights = 1 + torch.rand(k, generator=g, dtype=torch.float64)  # each mode >= 1 / (2K) of the mass
    return means, round(0.2 + 0.2 * float(torch.rand(1, generator=g)), 3), weights / weights.sum()


def _draw_mixture(g: torch.Generator, n: int, means: torch.Tensor, std: float, weights: torch.Tensor):
    which = torch.multinomial(weights, n, replacement=True, generator=g)
    return means[which] + std * torch.randn(n, 2, generator=g, dtype=torch.float64)


def mixture_eps(means: torch.Tensor, std: float, weights: torch.Tensor, alphas_cumprod: torch.Tensor):
    """The exact noise prediction eps*(x_t, t) of the Gaussian mixture, as a ``model(x_t, t)``."""
    def eps_model(x_t: torch.Tensor, t) -> torch.Tensor:
        abar = alphas_cumprod[int(t)].to(x_t.dtype)
        var = abar * std ** 2 + 1 - abar
        diff = abar.sqrt() * means.to(x_t.dtype) - x_t[:, None, :]            # (n, K, 2)
        logits = weights.to(x_t.dtype).log() - (diff ** 2).sum(-1) / (2 * var)
        score = (logits.softmax(1)[..., None] * diff).sum(1) / var            # grad log q_t(x_t)
        return -(1 - abar).sqrt() * score
    return eps_model


def _sampler_case(g: torch.Generator, k: int, T: int, n: int = 2000):
    betas, abar = _toy_schedule(T)
    means, std, weights = _toy_mixture(g, k)
    return torch.randn(n, 2, generator=g, dtype=torch.float64), betas, abar, means, std, weights


def _run_sampler(answer: Callable, args: tuple) -> torch.Tensor:
    """Where the learner's code runs: their loop with the mixture's exact eps, fresh z from a fixed seed."""
    x_T, betas, abar, means, std, weights = args
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return answer(mixture_eps(means, std, weights, abar), x_T.clone(), betas, abar)


def _ancestral_sampling_reference(x_T, betas, abar, means, std, weights):
    """Ho et al. 2020, algorithm 2, with sigma_t^2 = beta_tilde_t; x_0 is the mean of the last step."""
    eps_model, x = mixture_eps(means, std, weights, abar), x_T.clone()
    g = torch.Generator().manual_seed(1)
    for t in range(len(betas) - 1, -1, -1):
        abar_prev = abar[t - 1] if t > 0 else torch.ones((), dtype=abar.dtype)
        x0_hat = (x - (1 - abar[t]).sqrt() * eps_model(x, t)) / abar[t].sqrt()
        x = (abar_prev.sqrt() * betas[t] * x0_hat + (1 - betas[t]).sqrt() * (1 - abar_prev) * x) / (1 - abar[t])
        if t > 0:
            x = x + ((1 - abar_prev) / (1 - abar[t]) * betas[t]).sqrt() * torch.randn(x.shape, generator=g,
                                                                                       dtype=x.dtype)
    return x


def mixture_fit(samples: torch.Tensor, means: torch.Tensor, std: float, weights: torch.Tensor) -> dict:
    """How far ``samples`` are from the mixture, mode by mode (each sample goes to its nearest mean):
    the largest error of a mode's share of the samples, of its mean (in units of std) and of its spread."""
    samples = samples.double()
    which = torch.cdist(samples, means.double()).argmin(1)
    share = torch.bincount(which, minlength=len(means)).double() / len(samples)
    mean_err, spread = [], []
    for k in range(len(means)):
        mine = samples[which == k]
        if len(mine) < 2:
            return {"mass": float((share - weights).abs().max()), "mean": float("inf"), "spread": float("inf")}
        mean_err.append(float((mine.mean(0) - means[k]).norm()) / std)
        spread.append(float(mine.std(0).mean()) / std)
    return {"mass": float((share - weights).abs().max()), "mean": max(mean_err),
            "spread": max(abs(s - 1) for s in spread)}


SAMPLER_LIMITS = {"mass": 0.05, "mean": 0.25, "spread": 0.3}  # calibrated on the reference: see tests


def _samples_match_the_mixture(got, expected, args) -> bool:
    if not torch.isfinite(got).all():
        return False
    fit = mixture_fit(got, *args[3:])
    return all(fit[key] <= limit for key, limit in SAMPLER_LIMITS.items())


# The training step: a tiny MLP eps_theta(x_t, t) on samples of a fixed mixture, trained with the learner's loss.

TOY_STEPS, TOY_BATCH = 300, 256


def toy_denoiser(T: int) -> torch.nn.Module:
    """eps_theta(x_t, t) for 2-D points: an MLP on (x_t, sin/cos features of t / T), seeded weights."""
    class ToyDenoiser(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                                           torch.nn.SiLU(), torch.nn.Linear(64, 2))

        def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
            s = (torch.as_tensor(t, dtype=x_t.dtype) / T).expand(len(x_t))[:, None] * torch.tensor([1., 2., 4.])
            return self.net(torch.cat([x_t, (s * torch.pi).sin(), (s * torch.pi).cos()], 1))

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ToyDenoiser()


def _training_case(g: torch.Generator):
    means, std, weights = _toy_mixture(g, _size(g, 2, 4))
    return _draw_mixture(g, 4000, means, std, weights).float(), _toy_schedule(50)[1].float()


def _train_toy(loss_fn: Callable, args: tuple) -> torch.Tensor:
    """TOY_STEPS Adam steps of ``loss_fn(model, x0_batch, alphas_cumprod)``; the trained weights, flat."""
    data, abar = args
    model = toy_denoiser(len(abar))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        for _ in range(TOY_STEPS):
            batch = data[torch.randint(0, len(data), (TOY_BATCH,))]
            loss = loss_fn(model, batch, abar)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _diffusion_training_reference(data, abar):
    def loss(model, x0, alphas_cumprod):   # Ho et al. 2020, algorithm 1
        t = torch.randint(0, len(alphas_cumprod), (len(x0),))
        noise = torch.randn_like(x0)
        a = alphas_cumprod[t][:, None]
        return ((model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise) ** 2).mean()
    return _train_toy(loss, (data, abar))


def heldout_denoising_error(weights: torch.Tensor, data: torch.Tensor, abar: torch.Tensor) -> float:
    """The noise-prediction MSE of the trained weights on fresh noise at every t (drawn here, in the grader)."""
    model = toy_denoiser(len(abar))
    torch.nn.utils.vector_to_parameters(weights.float(), model.parameters())
    g = torch.Generator().manual_seed(2024)
    x0 = data[torch.randint(0, len(data), (2000,), generator=g)]
    t = torch.arange(2000) % len(abar)
    noise = torch.randn(x0.shape, generator=g)
    a = abar[t][:, None]
    with torch.no_grad():
        return float(((model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise) ** 2).mean())


def _denoises_as_well_as_the_reference(got, expected, args) -> bool:
    if not torch.isfinite(got).all():
        return False
    return heldout_denoising_error(got, *args) <= 1.05 * heldout_denoising_error(expected, *args) + 0.01


EXERCISES.update({e.id: e for e in (
    Exercise("4.4", "diffusion training loss", "04_diffusion", "my_diffusion_loss",
             "draw one timestep per point (all of 0..T-1 equally likely) and standard normal noise shaped like x0; "
             "noise x0 to x_t as in 4.1 (abar_t lined up as (B, 1) for points (B, 2)); the loss is the mean "
             "squared error between the model's prediction and the noise it should find (not x0)",
             reference=_diffusion_training_reference, public=lambda: _training_case(torch.Generator().manual_seed(4)),
             hidden=_training_case, run=_train_toy, compare=_denoises_as_well_as_the_reference),
    Exercise("4.5", "ancestral sampling loop", "04_diffusion", "my_sample",
             "go from t = T-1 down to 0; at each t ask the model for eps at (x, t), then take the 4.2 step with "
             "fresh standard normal z each time (scaled by sqrt(beta_tilde_t)); at t = 0 take abar_{t-1} = 1 and "
             "add no noise",
             reference=_ancestral_sampling_reference,
             public=lambda: _sampler_case(torch.Generator().manual_seed(8), 4, 100),
             hidden=lambda g: _sampler_case(g, _size(g, 2, 5), _size(g, 80, 160)),
             edge=(lambda: _sampler_case(torch.Generator().manual_seed(9), 1, 100),),  # one Gaussian
             run=_run_sampler, compare=_samples_match_the_mixture),
)})


def check_diffusion_loss(answer: Callable) -> None:
    """Exercise 4.4: ``answer(model, x0, alphas_cumprod)`` -> the simple loss; graded by training with it."""
    EXERCISES["4.4"].check(answer)


def check_sample(answer: Callable) -> None:
    """Exercise 4.5: ``answer(model, x_T, betas, alphas_cumprod)`` -> x_0; graded against the mixture it should draw."""
    EXERCISES["4.5"].check(answer)


def _answer_samplers(options):
    return torch.tensor(0.0)   # A: DDIM-50 and DDIM-20 agree (deterministic given x_T); DDPM adds fresh noise


def _answer_guidance(options):
    return torch.tensor(0.0)   # A: diversity falls (0.310 -> 0.277 in the lesson's run)


EXERCISES.update({e.id: e for e in (
    _letter_prediction("4.6", "predict: DDPM against DDIM", "04_diffusion", "my_prediction_samplers",
                "which of the samplers adds fresh noise z at every step, and which is a deterministic function "
                "of x_T (section 6, eta = 0)?", _answer_samplers, 3),
    _letter_prediction("4.7", "predict: guidance", "04_diffusion", "my_prediction_guidance",
                "guidance pushes each sample along eps_cond - eps_uncond, towards what makes the label likely: "
                "what does that do to how varied the digits of one class are?", _answer_guidance, 3),
)})


def check_prediction_samplers(answer: Callable) -> None:
    """Exercise 4.6: ``answer()`` -> the letter predicted for DDPM-1000 / DDIM-50 / DDIM-20 from one x_T."""
    EXERCISES["4.6"].check(answer)


def check_prediction_guidance(answer: Callable) -> None:
    """Exercise 4.7: ``answer()`` -> the letter predicted for the diversity of a class as w grows."""
    EXERCISES["4.7"].check(answer)


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
            raise ValueError(tr("answer with one letter, got {value}", value=repr(value)))
        return torch.tensor([float(ord(letter))], dtype=torch.float64)
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(tr("answer with a letter in quotes or a number, got {type}", type=type(value).__name__))
    return torch.tensor([float(value)], dtype=torch.float64)


def _letter_code(letter: str) -> torch.Tensor:
    return torch.tensor([float(ord(letter))], dtype=torch.float64)


def _within(share: float) -> Callable:
    """``compare`` of a numeric prediction: right within a relative tolerance."""
    def compare(got, expected, args) -> bool:
        return bool((got - expected).abs().item() <= share * expected.abs().item())
    return compare


def _committed_prediction(id: str, title: str, notebook: str, function: str, hint: str, reference: Callable,
                compare: Callable = close) -> Exercise:
    """A "predict, then run" question: no inputs, the learner's committed answer is judged."""
    return Exercise(id, title, notebook, function, hint, reference=reference, public=lambda: (),
                    run=_committed_answer, compare=compare)


def _answer_5_5():
    return _letter_code("A")   # the cache stores keys and values that would be recomputed identically


def _answer_5_6():
    # gpt_char: 4 layers, n_embd 128; rank 8 on c_attn (128 -> 384) and c_proj (128 -> 128): r * (in + out) each
    return torch.tensor([4 * (8 * (128 + 384) + 8 * (128 + 128))], dtype=torch.float64)


EXERCISES.update({e.id: e for e in (
    Exercise("5.4", "Transformer block", "05_gpt2", "my_block",
             "pre-norm: LayerNorm first, then attention or MLP, then add the input back (twice); the MLP is "
             "Linear(C, 4C), GELU with the tanh approximation, Linear(4C, C); heads are C // n_head wide",
             reference=_block_reference, public=_block_public, hidden=_block_hidden, run=_block_run,
             mentions=("aigc_course.models.gpt:Block", "aigc_course.models.gpt:CausalSelfAttention")),
    _committed_prediction("5.5", "prediction: the KV cache", "05_gpt2", "my_prediction_kv_cache",
                "does a key or value of an earlier position depend on tokens that come after it?",
                reference=_answer_5_5),
    _committed_prediction("5.6", "prediction: LoRA's trainable parameters", "05_gpt2", "my_prediction_lora_parameters",
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
    return _letter_code("C")   # real vs real: 411.7 at N = 50, 13.6 at N = 1000


def _answer_6_5():
    return _letter_code("A")   # the collapsed generator covers 3 of 8 modes: recall near 3/8


def _answer_7_3():
    return _letter_code("D")   # JPEG quality 50 leaves the fewest marks found (0.116; blur 0.293)


def _answer_7_4():
    return _letter_code("B")   # held-out human passages: z from 1.1 to 2.8, none reaches 4


EXERCISES.update({e.id: e for e in (
    Exercise("6.3", "FID from features", "06_evaluation", "my_fid",
             "one mean and one covariance per set (a covariance needs the features of a sample as a column: "
             "check the shape is (D, D), and divide by N - 1), then the Fréchet distance of exercise 6.1",
             reference=_fid_reference, public=lambda: _features_pair(torch.Generator().manual_seed(62), 40, 40, 5),
             hidden=_fid_hidden, edge=(_fid_identical, _fid_rank_deficient), compare=_fid_close,
             protects=("aigc_course.metrics.images:feature_statistics",)),
    _committed_prediction("6.4", "prediction: FID against N", "06_evaluation", "my_prediction_fid_n",
                "a covariance estimated from few samples is noisy; does noise make two estimates look more alike, "
                "or less?", reference=_answer_6_4),
    _committed_prediction("6.5", "prediction: lowest recall", "06_evaluation", "my_prediction_recall",
                "recall asks how much of the real data lies inside the generated samples' balls", reference=_answer_6_5),
    Exercise("7.2", "training a detector", "07_responsible_aigc", "my_train_detector",
             "label real 0 and generated 1; score = x @ w + b; minimise the mean logistic loss "
             "(binary_cross_entropy_with_logits) by gradient descent, starting from zeros, for all the steps",
             reference=_train_detector_reference,
             public=lambda: _detector_case(torch.Generator().manual_seed(71), 100, 4, 2.0),
             hidden=lambda g: _detector_case(g, _size(g, 40, 150), _size(g, 2, 8),
                                             1.5 + 1.5 * float(torch.rand(1, generator=g))),
             run=_detector_run, compare=_heldout_accuracy_close_to_reference),
    _committed_prediction("7.3", "prediction: what erases the watermark", "07_responsible_aigc", "my_prediction_watermark",
                "the mark lives in mid-to-high DCT frequencies: which processing throws away the most of those?",
                reference=_answer_7_3),
    _committed_prediction("7.4", "prediction: human text and the threshold", "07_responsible_aigc",
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
