"""Lesson 08 (text to image): the contrastive loss, cross-attention, the SDEdit start, and a CLIP training step
graded by what it trains.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from aigc_course.teaching.exercises.framework import Exercise, _one_thread, _size

EXERCISES: dict[str, Exercise] = {}


# --- 8.1 the symmetric contrastive loss -------------------------------------------------------------

def _clip_loss_reference(image_emb, text_emb, logit_scale):
    from aigc_course.models.clip import clip_loss

    return clip_loss(image_emb, text_emb, logit_scale)


def _clip_loss_case(g: torch.Generator, b: int, e: int, scale: float):
    text = torch.randn(b, e, generator=g)
    image = text + 0.8 * torch.randn(b, e, generator=g)     # related pairs: a loss between chance and zero
    return image * 3, text, torch.tensor(scale)              # unnormalised: the loss must normalise


# --- 8.2 cross-attention ----------------------------------------------------------------------------

def _cross_attention_reference(x, context, keep, w_q, w_k, w_v, w_o, b_o, heads):
    from aigc_course.models.latent_diffusion import CrossAttention

    layer = CrossAttention(x.shape[-1], context.shape[-1], int(heads))
    with torch.no_grad():
        for linear, w in ((layer.to_q, w_q), (layer.to_k, w_k), (layer.to_v, w_v), (layer.to_out, w_o)):
            linear.weight.copy_(w)
        layer.to_out.bias.copy_(b_o)
        return layer(x, context, keep)


def _cross_attention_case(g: torch.Generator, b: int, n: int, c: int, length: int, d: int, heads: int):
    keep = torch.ones(b, length, dtype=torch.bool)
    keep[:, length - 1:] = False                              # the last token is padding
    keep[0, :] = True                                         # ... except in the first prompt
    s = 1 / math.sqrt(c)
    return (torch.randn(b, n, c, generator=g), torch.randn(b, length, d, generator=g), keep,
            torch.randn(c, c, generator=g) * s, torch.randn(c, d, generator=g) / math.sqrt(d),
            torch.randn(c, d, generator=g) / math.sqrt(d), torch.randn(c, c, generator=g) * s,
            torch.randn(c, generator=g) * 0.1, heads)


def _cross_attention_hidden(g: torch.Generator):
    heads = _size(g, 1, 4)
    return _cross_attention_case(g, _size(g, 1, 3), _size(g, 1, 9), heads * _size(g, 2, 4), _size(g, 2, 6),
                                 _size(g, 2, 7), heads)


# --- 8.3 where SDEdit starts ------------------------------------------------------------------------

def _sdedit_reference(x0, strength, steps, alphas_cumprod, noise):
    from aigc_course.models.diffusion import Schedule
    from aigc_course.models.latent_diffusion import sdedit_start

    betas = 1 - alphas_cumprod / torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    return sdedit_start(Schedule("given", betas), x0, float(strength), int(steps), noise)[0]


def _abar(T: int = 1000) -> torch.Tensor:
    from aigc_course.models.diffusion import linear_schedule

    return linear_schedule(T).alphas_cumprod


def _sdedit_public():
    g = torch.Generator().manual_seed(83)
    return torch.randn(2, 4, 7, 7, generator=g), 0.6, 20, _abar(), torch.randn(2, 4, 7, 7, generator=g)


def _sdedit_hidden(g: torch.Generator):
    steps = _size(g, 4, 50)
    shape = (_size(g, 1, 3), _size(g, 1, 4), 7, 7)
    return (torch.randn(shape, generator=g), _size(g, 1, steps) / steps, steps, _abar(_size(g, 100, 1000)),
            torch.randn(shape, generator=g))


EXERCISES.update({e.id: e for e in (
    Exercise("8.1", "CLIP's contrastive loss", "08_text_to_image", "my_clip_loss",
             "normalise both embeddings (unit rows), logits = exp(logit_scale) * image @ text.T, then the mean of "
             "cross-entropy over rows and over columns with targets 0..B-1",
             reference=_clip_loss_reference,
             public=lambda: _clip_loss_case(torch.Generator().manual_seed(81), 6, 8, math.log(1 / 0.07)),
             hidden=lambda g: _clip_loss_case(g, _size(g, 2, 12), _size(g, 2, 16), float(torch.rand(1, generator=g)) * 4),
             edge=(lambda: _clip_loss_case(torch.Generator().manual_seed(84), 1, 4, 2.0),),   # one pair: loss 0
             protects=("aigc_course.models.clip:clip_loss",)),
    Exercise("8.2", "cross-attention", "08_text_to_image", "my_cross_attention",
             "Q = x @ w_q.T, K = context @ w_k.T, V = context @ w_v.T; split the last dimension into heads, "
             "scores = Q K^T / sqrt(C / heads), set scores of tokens with keep = False to -inf before the softmax, "
             "weights @ V, join the heads, then @ w_o.T + b_o",
             reference=_cross_attention_reference,
             public=lambda: _cross_attention_case(torch.Generator().manual_seed(82), 2, 5, 8, 4, 6, 2),
             hidden=_cross_attention_hidden, mentions=("aigc_course.models.latent_diffusion:CrossAttention",)),
    Exercise("8.3", "the SDEdit start", "08_text_to_image", "my_sdedit_start",
             "m = max(1, round(strength * steps)) of the steps are left to run; the sampler's timesteps are "
             "spaced T // steps apart and end at 0, so the first one left is t = (m - 1) * (T // steps); "
             "return sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise",
             reference=_sdedit_reference, public=_sdedit_public, hidden=_sdedit_hidden,
             protects=("aigc_course.models.latent_diffusion:sdedit_start",)),
)})


def check_clip_loss(answer: Callable) -> None:
    """Exercise 8.1: ``answer(image_emb, text_emb, logit_scale)`` -> the symmetric contrastive loss (a scalar)."""
    EXERCISES["8.1"].check(answer)


def check_cross_attention(answer: Callable) -> None:
    """Exercise 8.2: ``answer(x, context, keep, w_q, w_k, w_v, w_o, b_o, heads)`` -> (B, N, C)."""
    EXERCISES["8.2"].check(answer)


def check_sdedit_start(answer: Callable) -> None:
    """Exercise 8.3: ``answer(x0, strength, steps, alphas_cumprod, noise)`` -> the noisy start x_t."""
    EXERCISES["8.3"].check(answer)


# --- 8.4 a CLIP training step, graded by what it learns ---------------------------------------------
# Toy pairs that share a hidden code z (4 numbers): an "image" is P z + noise (16 numbers), its "caption"
# Q z + noise (12 numbers). Two linear encoders trained with the learner's step should retrieve the right
# partner of pairs they never saw; the grader measures that on pairs it draws itself.

CLIP_STEPS, CLIP_BATCH = 150, 64


class ToyDualEncoder(torch.nn.Module):
    """Two linear encoders into an 8-D space and a learned temperature, seeded: the toy CLIP of exercise 8.4."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.image = torch.nn.Linear(16, 8)
            self.text = torch.nn.Linear(12, 8)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image(images)

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        return self.text(texts)


def _toy_pairs(g: torch.Generator, n: int, maps: tuple[torch.Tensor, torch.Tensor]):
    z = torch.randn(n, 4, generator=g)
    return z @ maps[0] + 0.1 * torch.randn(n, 16, generator=g), z @ maps[1] + 0.1 * torch.randn(n, 12, generator=g)


def _toy_case(g: torch.Generator):
    maps = (torch.randn(4, 16, generator=g), torch.randn(4, 12, generator=g))
    return (*_toy_pairs(g, 2000, maps), *maps)


def _train_clip_toy(step: Callable, args: tuple) -> torch.Tensor:
    """CLIP_STEPS calls of ``step(model, images, texts, optimizer)`` on random batches; the weights, flat."""
    images, texts = args[0], args[1]
    model = ToyDualEncoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with _one_thread(), torch.random.fork_rng():
        torch.manual_seed(1)
        for _ in range(CLIP_STEPS):
            i = torch.randint(0, len(images), (CLIP_BATCH,))
            step(model, images[i], texts[i], optimizer)
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _clip_step_reference(images, texts, map_image, map_text):
    from aigc_course.models.clip import clip_loss

    def step(model, x, y, optimizer):
        loss = clip_loss(model.encode_image(x), model.encode_text(y), model.logit_scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return _train_clip_toy(step, (images, texts))


def heldout_recall(weights: torch.Tensor, map_image: torch.Tensor, map_text: torch.Tensor, n: int = 200) -> float:
    """Recall@1 (image -> text) of trained toy encoders among ``n`` fresh pairs drawn here (in the grader)."""
    model = ToyDualEncoder()
    torch.nn.utils.vector_to_parameters(weights.float(), model.parameters())
    images, texts = _toy_pairs(torch.Generator().manual_seed(2024), n, (map_image, map_text))
    with torch.no_grad():
        sim = torch.nn.functional.normalize(model.encode_image(images), dim=-1) @ \
            torch.nn.functional.normalize(model.encode_text(texts), dim=-1).T
    return (sim.argmax(1) == torch.arange(n)).float().mean().item()


def _retrieves_as_well_as_the_reference(got, expected, args) -> bool:
    if not torch.isfinite(got).all():
        return False
    return heldout_recall(got, *args[2:]) >= 0.9 * heldout_recall(expected, *args[2:]) - 0.02


EXERCISES.update({e.id: e for e in (
    Exercise("8.4", "a CLIP training step", "08_text_to_image", "my_clip_step",
             "embed the images and the texts with the model's two encoders, take your contrastive loss of 8.1 "
             "with model.logit_scale, then the usual three lines: zero the gradients, backward, step",
             reference=_clip_step_reference, public=lambda: _toy_case(torch.Generator().manual_seed(85)),
             hidden=_toy_case, run=_train_clip_toy, compare=_retrieves_as_well_as_the_reference,
             protects=("aigc_course.models.clip:clip_loss",)),
)})


def check_clip_step(answer: Callable) -> None:
    """Exercise 8.4: ``answer(model, images, texts, optimizer)`` takes one step; graded by held-out recall@1."""
    EXERCISES["8.4"].check(answer)
