"""Lesson 08: how the three parts of the text-to-image model are trained, in order.

1. ``t2i_autoencoder``: the latent autoencoder (28x28 <-> 4x7x7) on the training digits;
2. ``t2i_clip``: the text and image encoders, contrastively, on (digit, caption) pairs in both languages;
3. ``t2i_unet``: the latent U-Net, cross-attending to the frozen text encoder's token states, with 10% of
   the captions dropped to the empty prompt (classifier-free guidance). It needs 1 and 2 (named in its config).

``python -m aigc_course train t2i --preset t2i_clip --out data/checkpoints/t2i_clip`` reproduces each.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aigc_course.core.env import pick_device, seed_everything
from aigc_course.data.attributes import attributes_of
from aigc_course.data.captions import caption_pool
from aigc_course.data.digits import load_digits
from aigc_course.data.prompts import PromptTokenizer
from aigc_course.metrics import text2img as t2i_metrics
from aigc_course.models.clip import ClipConfig, TinyCLIP
from aigc_course.models.latent_diffusion import (AutoencoderConfig, LatentAutoencoder, TextUNet, TextUNetConfig,
                                                 drop_captions, text_diffusion_loss)
from aigc_course.recipes.common import _save_trained
from aigc_course.train import EMA, History, WarmupCosine, adam, fit


@dataclass
class AutoencoderRecipe:
    """``kl_weight``: small, so the latent keeps detail (Stable Diffusion's autoencoder uses ~1e-6 with a
    perceptual loss); its prior is never sampled, the diffusion model does the generating."""

    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    kl_weight: float = 0.01
    seed: int = 0


@dataclass
class ClipRecipe:
    """``captions_per_language``: random captions pre-drawn per digit (one is picked per step)."""

    model: ClipConfig = field(default_factory=ClipConfig)
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    captions_per_language: int = 4
    seed: int = 0


@dataclass
class TextToImageRecipe:
    """``caption_dropout``: share of captions replaced by the empty prompt (Ho & Salimans used 10-20%)."""

    model: TextUNetConfig = field(default_factory=TextUNetConfig)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    caption_dropout: float = 0.1
    ema: float = 0.999
    captions_per_language: int = 4
    eval_samples: int = 1000
    seed: int = 0


T2I_PRESETS = {
    "t2i_autoencoder": AutoencoderRecipe(),
    "t2i_clip": ClipRecipe(),
    "t2i_unet": TextToImageRecipe(),
}


def _schedule():
    return WarmupCosine(warmup=200, floor=0.05)


def _pooled_ids(split: str, per_language: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits of ``split`` (N, 1, 28, 28) and token ids of their pre-drawn captions (N, 2 * per_language, L)."""
    digits = load_digits(split)
    pool = caption_pool(attributes_of(digits.x, digits.labels), per_language, seed)
    tokenizer = PromptTokenizer()
    ids = torch.stack([tokenizer.encode_batch(captions) for captions in pool])
    return digits.x, ids


def _batches(n: int, batch_size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda: torch.randint(0, n, (batch_size,), generator=g)


# --- 1. the autoencoder ---------------------------------------------------------------------------

def train_t2i_autoencoder(recipe: AutoencoderRecipe, *, out: str | Path | None = None, command: str = "",
                          progress: bool = True) -> tuple[LatentAutoencoder, History, dict]:
    """Train the autoencoder; set ``config.scale`` to 1 / std of the training latents; evaluate on held-out digits."""
    seed_everything(recipe.seed)
    device = pick_device()
    x = load_digits("train").x
    model = LatentAutoencoder(recipe.model)
    pick = _batches(len(x), recipe.batch_size, recipe.seed)
    started = time.perf_counter()
    history = fit(model, lambda m, batch: m.loss(batch, recipe.kl_weight), lambda: x[pick()], steps=recipe.steps,
                  optimizer=adam(recipe.lr), schedule=_schedule(), device=device, progress=progress,
                  desc="autoencoder")
    seconds = time.perf_counter() - started
    model = model.cpu().eval()
    with torch.no_grad():
        model.config.scale = round(1.0 / model.moments(x)[0].std().item(), 5)
        test = load_digits("test").x
        recon = model.decode(model.encode(test))
        _, logs = model.loss(test, recipe.kl_weight)
    results = {"test_reconstruction_nats": round(logs["reconstruction"], 2), "test_kl_nats": round(logs["kl"], 2),
               "test_pixel_rmse": round((recon - test).pow(2).mean().sqrt().item(), 4),
               "scale": model.config.scale, "train_seconds": round(seconds, 1), "steps_run": len(history.steps)}
    if out is not None:
        _save_trained(model, out, recipe, results, command, seconds, {"loss": _every(history.series("loss"))})
    return model, history, results


def _tail_mean(values: list[float], k: int = 100) -> float:
    """Mean of the last ``k`` steps' losses: the final loss, without one batch's noise."""
    return round(sum(values[-k:]) / len(values[-k:]), 4)


def _every(values: list[float], k: int = 50) -> list[float]:
    """Means of consecutive ``k``-step windows, rounded: a loss curve small enough for a model card."""
    return [round(sum(values[i:i + k]) / len(values[i:i + k]), 4) for i in range(0, len(values), k)]


# --- 2. the text encoder, CLIP-style --------------------------------------------------------------

def clip_retrieval(clip: TinyCLIP, n: int = 1000, lang: str = "en") -> dict:
    """Recall@1/5 in both directions among ``n`` held-out digits and their full captions."""
    prompts, images = t2i_metrics.heldout_prompts(n, lang)
    ids = PromptTokenizer().encode_batch(prompts)
    return t2i_metrics.retrieval(clip, images, ids, prompts)


def train_t2i_clip(recipe: ClipRecipe, *, out: str | Path | None = None, command: str = "",
                   progress: bool = True) -> tuple[TinyCLIP, History, dict]:
    """Contrastive training of both encoders on (digit, caption) pairs; captions in English or Chinese."""
    seed_everything(recipe.seed)
    device = pick_device()
    x, ids = _pooled_ids("train", recipe.captions_per_language, recipe.seed)
    model = TinyCLIP(recipe.model)
    pick = _batches(len(x), recipe.batch_size, recipe.seed)
    variant = torch.Generator().manual_seed(recipe.seed + 1)

    def batch():
        i = pick()
        j = torch.randint(0, ids.shape[1], (len(i),), generator=variant)
        return x[i], ids[i, j]

    started = time.perf_counter()
    history = fit(model, lambda m, b: m(*b), batch, steps=recipe.steps, optimizer=adam(recipe.lr),
                  schedule=_schedule(), device=device, progress=progress, desc="CLIP")
    seconds = time.perf_counter() - started
    model = model.cpu().eval()
    results = {"final_loss": _tail_mean(history.series("loss")),
               "temperature": round(1 / model.logit_scale.exp().item(), 4),
               "retrieval_en": clip_retrieval(model, lang="en"), "retrieval_zh": clip_retrieval(model, lang="zh"),
               "train_seconds": round(seconds, 1), "steps_run": len(history.steps)}
    if out is not None:
        _save_trained(model, out, recipe, results, command, seconds, {"loss": _every(history.series("loss"))})
    return model, history, results


# --- 3. the latent U-Net with cross-attention -----------------------------------------------------

def _load_part(name: str):
    from aigc_course.models.hub import load

    return load(name)[0]


def train_t2i_unet(recipe: TextToImageRecipe, *, out: str | Path | None = None, command: str = "",
                   progress: bool = True, max_seconds: float | None = None) -> tuple[TextUNet, History, dict]:
    """Train the U-Net on latents of the training digits (or pixels, when ``model.autoencoder`` is None)."""
    from aigc_course.models.hub import load_pretrained
    from aigc_course.models.text2img import TextToImage

    seed_everything(recipe.seed)
    device = pick_device()
    c = recipe.model
    clip = _load_part(c.clip).to(device).eval().requires_grad_(False)
    autoencoder = _load_part(c.autoencoder).eval() if c.autoencoder else None
    x, ids = _pooled_ids("train", recipe.captions_per_language, recipe.seed)
    with torch.no_grad():
        data = autoencoder.encode(x) if autoencoder is not None else x * 2 - 1   # what the U-Net models
    null = PromptTokenizer().encode("", allow_empty=True)
    model = TextUNet(c)
    pick = _batches(len(x), recipe.batch_size, recipe.seed)
    variant = torch.Generator().manual_seed(recipe.seed + 1)

    def batch():
        i = pick()
        return data[i], ids[i, torch.randint(0, ids.shape[1], (len(i),), generator=variant)]

    def step(m: TextUNet, b):
        x0, text = b
        with torch.no_grad():
            states, keep = clip.token_states(drop_captions(text, null, recipe.caption_dropout))
        return text_diffusion_loss(m, x0, states, keep)

    ema = EMA(recipe.ema)
    started = time.perf_counter()
    history = fit(model, step, batch, steps=recipe.steps, optimizer=adam(recipe.lr), schedule=_schedule(),
                  callbacks=[ema], device=device, progress=progress, max_seconds=max_seconds,
                  desc="latent U-Net" if autoencoder is not None else "pixel U-Net")
    seconds = time.perf_counter() - started
    model = ema.model.cpu().eval()
    results = {"final_loss": _tail_mean(history.series("loss")), "train_seconds": round(seconds, 1),
               "seconds_per_step": round(seconds / len(history.steps), 4), "steps_run": len(history.steps)}
    if recipe.eval_samples:
        pipe = TextToImage(model.to(device), clip, autoencoder.to(device) if autoencoder else None)
        classifier = load_pretrained("digit_classifier", device)[0]
        results["eval"] = {lang: t2i_metrics.evaluate_text_to_image(pipe, classifier, recipe.eval_samples, lang=lang)
                           for lang in ("en", "zh")}
        model = model.cpu()
    if out is not None:
        _save_trained(model, out, recipe, results, command, seconds, {"loss": _every(history.series("loss"))})
    return model, history, results
