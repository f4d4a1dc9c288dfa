"""Photos and textures for style transfer: the shipped ones by name, or your own files.

``load_image("chelsea", 256)`` gives a (1, 3, H, W) float tensor in [0, 1] whose
longer side is 256 pixels. Built-in names come from ``data/style/*.jpg``,
converted from photos that scikit-image and scikit-learn ship inside their
wheels and from public-domain Van Gogh paintings that the Debian packages
opencv-doc and gcompris-qt-data ship (see ``scripts/make_style_images.py`` and
``data/README.md``).

Anything else is read as a file: any size, RGB, RGBA (composited on white),
greyscale or palette images. Other pixel formats (16-bit, float, ...) and files
that are not images give one clear error saying what to do.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# name -> (file in data/, what it shows, origin)
BUILTIN = {
    "chelsea": ("style/chelsea.jpg", "Chelsea the cat", "scikit-image"),
    "astronaut": ("style/astronaut.jpg", "astronaut Eileen Collins", "scikit-image"),
    "china": ("style/china.jpg", "a Chinese temple", "scikit-learn"),
    "coffee": ("style/coffee.jpg", "a cup of coffee", "scikit-image"),
    "flower": ("style/flower.jpg", "a flower close-up (colourful texture)", "scikit-learn"),
    "ihc": ("style/ihc.jpg", "immunohistochemistry stain (painterly texture)", "scikit-image"),
    "hubble": ("style/hubble.jpg", "Hubble deep field (galaxies on black)", "scikit-image"),
    "gravel": ("style/gravel.jpg", "gravel texture (grey)", "scikit-image"),
    "starry_night": ("style/starry_night.jpg", "Van Gogh, The Starry Night (1889)", "Debian opencv-doc"),
    "cafe_terrace": ("style/cafe_terrace.jpg", "Van Gogh, Cafe Terrace at Night (1888)", "Debian gcompris-qt-data"),
    "langlois_bridge": ("style/langlois_bridge.jpg", "Van Gogh, The Langlois Bridge at Arles (1888)",
                        "Debian gcompris-qt-data"),
}
CONTENT_NAMES = ("chelsea", "astronaut", "china", "coffee")
STYLE_NAMES = ("starry_night", "cafe_terrace", "langlois_bridge", "flower", "ihc", "hubble", "gravel")

ACCEPTED_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "La"}
MIN_SIZE = 32  # VGG19 halves the image five times; smaller images lose the deep layers


def builtin_path(name: str) -> Path:
    """Checked path of a built-in image (its sha256 is in data/assets.json)."""
    from aigc_course.core.assets import asset_path

    if name not in BUILTIN:
        raise ValueError(f"unknown built-in image {name!r}; choose from {', '.join(BUILTIN)} or give a file path")
    return asset_path(BUILTIN[name][0])


def open_image(source: str | Path) -> Image.Image:
    """Open a built-in name or an image file as an RGB PIL image, with clear errors."""
    if isinstance(source, str) and source in BUILTIN:
        path = builtin_path(source)
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"image {str(source)!r} not found: give an existing file or one of the "
                                    f"built-in names {', '.join(BUILTIN)}")
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read {path} as an image ({type(err).__name__}); use a PNG or JPEG file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{path} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS:,} pixels): "
                         "downscale it first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from None
    return to_rgb(img, str(path))


def to_rgb(img: Image.Image, what: str = "image") -> Image.Image:
    """RGB, RGBA (on white), greyscale and palette images -> RGB; other modes raise ValueError."""
    if img.mode not in ACCEPTED_MODES:
        raise ValueError(f"{what} has pixel mode {img.mode!r} (e.g. 16-bit or floating point); convert it to "
                         "8-bit RGB or greyscale first (e.g. save it as an 8-bit PNG)")
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def resize_longer_side(img: Image.Image, size: int | None) -> Image.Image:
    """Scale so the longer side is ``size`` pixels (aspect ratio kept; None keeps the size)."""
    if size is None:
        return img
    if size < MIN_SIZE:
        raise ValueError(f"size {size} is too small: use at least {MIN_SIZE} pixels")
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if min(new) < MIN_SIZE:
        raise ValueError(f"the image is {w}x{h}: at size {size} its shorter side would be {min(new)} px; "
                         f"crop it or use a larger size (shorter side at least {MIN_SIZE} px)")
    return img.resize(new, Image.LANCZOS, reducing_gap=3.0) if new != img.size else img


def load_image(source, size: int | None = 256) -> torch.Tensor:
    """A built-in name, file path, PIL image, (H, W[, C]) array or image tensor -> (1, 3, H, W) in [0, 1]."""
    if isinstance(source, torch.Tensor):
        return _from_tensor(source, size)
    if isinstance(source, np.ndarray):
        img = _from_array(source)
    elif isinstance(source, Image.Image):
        img = to_rgb(source)
    elif isinstance(source, (str, Path)):
        img = open_image(source)
    else:
        raise ValueError(f"cannot use a {type(source).__name__} as an image: give a name, path, PIL image, "
                         "array or tensor")
    img = resize_longer_side(img, size)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating) or array.min() < 0 or array.max() > 1:
            raise ValueError(f"an image array must be uint8 or float in [0, 1], got {array.dtype} "
                             f"in [{array.min()}, {array.max()}]")
        array = np.rint(array * 255).astype(np.uint8)
    return to_rgb(Image.fromarray(array))


def _from_tensor(t: torch.Tensor, size: int | None) -> torch.Tensor:
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[:2] != (1, 3):
        raise ValueError(f"an image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(t.shape)}")
    t = t.detach().float()
    if size is not None and max(t.shape[-2:]) != size:
        h, w = t.shape[-2:]
        scale = size / max(h, w)
        t = torch.nn.functional.interpolate(t, size=(round(h * scale), round(w * scale)), mode="bilinear",
                                            antialias=True, align_corners=False).clamp(0, 1)
    return t.contiguous()
