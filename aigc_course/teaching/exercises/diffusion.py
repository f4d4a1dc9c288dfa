"""Lesson 04 (diffusion): q_sample, the DDPM and DDIM steps, the training loss, the sampling loop,
two predictions.
"""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.teaching.exercises.framework import Exercise, _size, letter, question

EXERCISES: dict[str, Exercise] = {}


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


def _answer_4_6():
    return letter("A")   # DDIM-50 and DDIM-20 agree (deterministic given x_T); DDPM adds fresh noise


def _answer_4_7():
    return letter("A")   # diversity falls (0.310 -> 0.277 in the lesson's run)


EXERCISES.update({e.id: e for e in (
    question("4.6", "predict: DDPM against DDIM", "04_diffusion",
             "which of the samplers adds fresh noise z at every step, and which is a deterministic function "
             "of x_T (section 6, eta = 0)?", _answer_4_6, function="my_prediction_samplers", letters="ABC"),
    question("4.7", "predict: guidance", "04_diffusion",
             "guidance pushes each sample along eps_cond - eps_uncond, towards what makes the label likely: "
             "what does that do to how varied the digits of one class are?", _answer_4_7,
             function="my_prediction_guidance", letters="ABC"),
)})


def check_prediction_samplers(answer: Callable) -> None:
    """Exercise 4.6: ``answer()`` -> the letter predicted for DDPM-1000 / DDIM-50 / DDIM-20 from one x_T."""
    EXERCISES["4.6"].check(answer)


def check_prediction_guidance(answer: Callable) -> None:
    """Exercise 4.7: ``answer()`` -> the letter predicted for the diversity of a class as w grows."""
    EXERCISES["4.7"].check(answer)
