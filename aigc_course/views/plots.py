"""Figures the lessons share: image grids, latent scatters, loss curves, the AIGC timeline.

Each function draws on a Matplotlib ``ax`` (a new figure when none is given)
and returns the axes, so notebooks can compose figures and still get a
one-line call. ``grid_array`` and ``save_png`` serve the CLI, which writes
images without Matplotlib.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from aigc_course.core.i18n import tr

DIGIT_COLOURS = plt.get_cmap("tab10")


def _new_ax(ax, figsize=(5, 5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _as_numpy_images(images) -> np.ndarray:
    """Accept (N, 1, H, W) or (N, H, W), tensor or array, values in [0, 1]; return float (N, H, W)."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"expected images of shape (N, 1, H, W) or (N, H, W), got {arr.shape}")
    return arr.astype(np.float32)


def grid_array(images, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile N grey images into one (rows*(H+pad)+pad, cols*(W+pad)+pad) array in [0, 1]."""
    arr = _as_numpy_images(images)
    n, h, w = arr.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for i, img in enumerate(arr):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid


def image_grid(images, nrow: int | None = None, title: str | None = None, ax=None, figsize=(5, 5)):
    """Show a grid of grey images (white ink on black, as in MNIST), separated by white gaps."""
    ax = _new_ax(ax, figsize)
    ax.imshow(grid_array(images, nrow), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_png(array: np.ndarray, path: str | Path, scale: int = 2) -> Path:
    """Write a [0, 1] grey array as an 8-bit PNG, enlarged ``scale`` times with nearest-neighbour pixels."""
    img = Image.fromarray(np.clip(np.rint(array * 255), 0, 255).astype(np.uint8), mode="L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def latent_scatter(z, labels, title: str | None = None, ax=None, figsize=(6, 5)):
    """Scatter 2-D latent codes coloured by digit label, with a legend (default title: test digits in latent space)."""
    z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    labels = np.asarray(labels)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter draws 2-D codes (N, 2), got {z.shape}: project higher-D codes first")
    ax = _new_ax(ax, figsize)
    for digit in range(10):
        pts = z[labels == digit]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=DIGIT_COLOURS(digit), label=str(digit))
    ax.legend(title=tr("digit"), markerscale=3, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=tr("Test digits in latent space") if title is None else title)
    return ax


@torch.no_grad()
def latent_manifold(model, n: int = 15, span: float = 3.0, ax=None, figsize=(6, 6),
                    title: str | None = None):
    """Decode an n x n grid of 2-D latents over [-span, span]^2 and show it (z_2 grows upwards)."""
    ax = _new_ax(ax, figsize)
    values = torch.linspace(-span, span, n)
    z = torch.stack(torch.meshgrid(values, values.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
    images = model.decode_mean(z.to(next(model.parameters()).device))
    ax.imshow(grid_array(images, nrow=n, pad=0), cmap="gray", extent=(-span, span, -span, span))
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=tr("Decoded digits across the latent plane") if title is None else title)
    return ax


def loss_curves(curves: dict[str, Sequence], xlabel: str | None = None, ylabel: str | None = None,
                title: str | None = None, ax=None, figsize=(6, 4)):
    """Plot named curves; each value is a list of y values or of (x, y) pairs.

    Labels left out read "epoch", "nats per image" and "Training" (in the current language)."""
    ax = _new_ax(ax, figsize)
    for name, values in curves.items():
        values = list(values)
        if values and isinstance(values[0], (list, tuple)):
            xs, ys = zip(*values)
        else:
            xs, ys = range(1, len(values) + 1), values
        ax.plot(xs, ys, label=name)
    ax.set(xlabel=tr("epoch") if xlabel is None else xlabel, ylabel=tr("nats per image") if ylabel is None else ylabel,
           title=tr("Training") if title is None else title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


FAMILY_COLOURS = {"early": "tab:gray", "VAE": "tab:blue", "GAN": "tab:red", "style": "tab:purple",
                  "autoregressive": "tab:green", "diffusion": "tab:orange"}


def family_label(family: str) -> str:
    """How the timeline's legend names a family (a key of ``FAMILY_COLOURS``), in the current language."""
    return {"early": tr("early"), "VAE": "VAE", "GAN": "GAN", "style": tr("style"),
            "autoregressive": tr("autoregressive"), "diffusion": tr("diffusion")}.get(family, family)


def timeline(events, ax=None, figsize=(14, 4.8), title: str | None = None):
    """Draw events (with ``year``, ``name``, ``family``) in order, evenly spaced, alternating above and below.

    Event names are shown in the current language (the message table holds each of
    ``teaching.history.EVENTS``); the default title says the spacing is not to scale."""
    ax = _new_ax(ax, figsize)
    ax.axhline(0, color="black", lw=1)
    for i, event in enumerate(events):
        height = (1 + (i % 3)) * (1 if i % 2 == 0 else -1)
        colour = FAMILY_COLOURS.get(event.family, "black")
        ax.plot([i, i], [0, height], color=colour, lw=1)
        ax.scatter([i], [0], color=colour, zorder=3)
        ax.text(i, height, f"{tr(event.name)}\n{event.year}", ha="center",
                va="bottom" if height > 0 else "top", fontsize=8, color=colour)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=0, label=family_label(f))
               for f, c in FAMILY_COLOURS.items()]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, ncols=3)
    ax.set(xlim=(-0.7, len(events) - 0.3), ylim=(-4.5, 5), xticks=[], yticks=[],
           title=tr("A short history of generative AI (evenly spaced, not to scale)") if title is None else title)
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    return ax
