"""Lesson 03 (neural style transfer): Gram matrix, style loss, total variation, the L-BFGS closure,
two predictions.
"""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.models.style import gram_matrix as _gram_matrix
from aigc_course.models.style import style_loss as _style_loss
from aigc_course.models.style import total_variation as _total_variation
from aigc_course.teaching.exercises.framework import Exercise, _size, letter, question

EXERCISES: dict[str, Exercise] = {}


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


def _answer_3_5():
    return letter("B")   # Adam at 0.02 ends lower on this pair (lesson 03 measures 4.4e5 against 6.05e5)


def _answer_3_6():
    return letter("B")   # the texture takes over


EXERCISES.update({e.id: e for e in (
    Exercise("3.4", "L-BFGS closure", "03_style_transfer", "my_closure",
             "the closure must (1) clear the gradients left by the previous evaluation (the optimizer has a "
             "method for that), (2) compute content + style + total variation weighted by weights in that order "
             "(mean squared error for content, your style loss, your total variation), (3) back-propagate that "
             "loss and (4) return it",
             reference=_lbfgs_reference, public=lambda: _closure_case(torch.Generator().manual_seed(30)),
             hidden=_closure_case, run=_lbfgs_run, compare=_loss_within_5_percent,
             protects=(f"{__name__}:_style_closure_reference",)),
    question("3.5", "predict: L-BFGS or Adam", "03_style_transfer",
             "reread how L-BFGS uses its recent gradients, and what kind of objective this is (smooth, "
             "no mini-batches); then run the next cell", _answer_3_5,
             function="my_prediction_optimizer", letters="ABC"),
    question("3.6", "predict: a large style weight", "03_style_transfer",
             "the optimiser minimises content_weight * content + style_weight * style: which term dominates "
             "when the ratio is 100?", _answer_3_6, function="my_prediction_style_weight", letters="ABC"),
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
