"""Style transfer as training: the image is the only parameter, :func:`fit` is the loop.

Gatys et al. (2015) optimise the *pixels* of an image so a frozen VGG19 sees one
photo's content and another image's style in it (``models/style.py`` holds the
losses). Put that way it is ordinary training: a module whose one parameter is the
image (:class:`Canvas`), a loss step (the weighted objective), an optimiser. The
paper used L-BFGS, which evaluates the loss several times per step; ``fit`` calls
every optimiser as ``optimizer.step(closure)``, so L-BFGS needs nothing special:
one ``fit`` step runs one L-BFGS call of ``config.steps`` evaluations. Adam runs
``config.steps`` ordinary steps.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from aigc_course.core.env import pick_device
from aigc_course.data.images import load_image
from aigc_course.models.style import StyleConfig, StyleObjective, luminance, match_luminance, recolour
from aigc_course.models.vgg import VGGFeatures
from aigc_course.train.loop import adam, fit


@dataclass
class StyleResult:
    """The stylised image (1, 3, H, W) in [0, 1], the loss of every evaluation and the time it took."""

    image: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        return self.history[-1]["total"] if self.history else float("nan")


class Canvas(nn.Module):
    """The one trainable parameter of style transfer: an image (1, 3, H, W) in NCHW order.

    L-BFGS flattens the gradients, so the pixels stay in plain (not channels_last) layout.
    """

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.image = nn.Parameter(image.detach().contiguous())

    def forward(self) -> torch.Tensor:
        return self.image


def _optimizer(config: StyleConfig):
    if config.optimizer == "lbfgs":
        return lambda canvas: torch.optim.LBFGS(canvas.parameters(), lr=config.lr, max_iter=config.steps,
                                                max_eval=config.steps, history_size=50, tolerance_grad=1e-9,
                                                tolerance_change=1e-12, line_search_fn=config.line_search)
    return adam(config.lr)


def stylize(content, style, config: StyleConfig | None = None, *, extractor: VGGFeatures | None = None,
            progress: bool = True, callback: Callable[[int, dict], None] | None = None,
            device: torch.device | str | None = None, **overrides) -> StyleResult:
    """Gatys-style transfer: optimise an image's pixels to match ``content`` and ``style``.

    ``content``/``style``: a built-in name ("chelsea"), a file path, a PIL image, an array or a
    (1, 3, H, W) tensor in [0, 1]; they are resized so the longer side is ``config.size`` (the
    style image to the content image's longer side). Keyword ``overrides`` replace config fields:
    ``stylize("chelsea", "flower", steps=40, size=128)``. ``callback(evaluation, losses)`` is
    called after every loss evaluation (the explorer's progress bar uses it).
    """
    config = replace(config or StyleConfig(), **overrides)
    config.validate()
    device = torch.device(device) if device is not None else pick_device()
    content_img = load_image(content, config.size).to(device)
    style_img = load_image(style, config.size).to(device)
    if config.preserve_color:
        content_rgb, style_img = content_img, match_luminance(style_img, content_img)
        content_img = luminance(content_img)
    start = time.perf_counter()
    objective = StyleObjective(content_img, style_img, config, extractor)
    if config.init == "content":
        x = content_img.clone()
    else:
        x = torch.rand(content_img.shape, generator=torch.Generator().manual_seed(config.seed)).to(device)
    canvas = Canvas(x)
    history: list[dict[str, float]] = []
    bar = tqdm(total=config.steps, desc=f"stylize {config.optimizer} {tuple(x.shape[-2:])}",
               disable=not progress, leave=False)

    def step(canvas: Canvas, batch: None) -> torch.Tensor:  # one loss evaluation
        with torch.no_grad():
            canvas.image.clamp_(0, 1)  # keep the pixels a valid image
        losses = objective(canvas())
        row = {k: float(v.detach()) for k, v in losses.items()}
        history.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['total']:.4g}", refresh=False)
        if callback is not None:
            callback(len(history), row)
        return losses["total"]

    fit(canvas, step, None, steps=1 if config.optimizer == "lbfgs" else config.steps, optimizer=_optimizer(config),
        device=device, progress=False)
    bar.close()
    image = canvas.image.detach().clamp(0, 1).contiguous()
    if config.preserve_color:
        image = recolour(image, content_rgb)
    return StyleResult(image.cpu(), history, time.perf_counter() - start, asdict(config))
