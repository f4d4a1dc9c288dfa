"""Recipes: how each shipped checkpoint is trained, shared by the CLI and the notebooks.

``python -m aigc_course train vae --preset vae_mlp2d`` and a notebook cell with
``TRAIN = True`` call the same function, so the notebook's model and the
shipped one come from the same code. One file per family:
:mod:`~aigc_course.recipes.vae`, :mod:`~aigc_course.recipes.classifier`,
:mod:`~aigc_course.recipes.gan`, :mod:`~aigc_course.recipes.diffusion`,
:mod:`~aigc_course.recipes.gpt`, :mod:`~aigc_course.recipes.text2img` (lesson 08) and :mod:`~aigc_course.recipes.assistant` (lesson 09); :mod:`~aigc_course.recipes.common` holds the
model card every recipe writes.

:data:`FAMILIES`, below, is the registry the CLI's ``train`` command dispatches
through. Each family lists one or more :class:`Trainer` s: a dict of presets
(name -> recipe dataclass), the function that trains them, which command-line
flags change which recipe fields, and which files a saved checkpoint has. To
add a family: write ``recipes/NAME.py`` with ``NAME_PRESETS`` and
``train_NAME(recipe, *, out, command)``, then add one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from aigc_course.recipes.assistant import (CHAT_PRESETS, EMERGENCE_PRESETS, GROKKING_PRESETS, IN_CONTEXT_PRESETS,
                                           SCRATCHPAD_PRESETS, train_chat, train_emergence, train_grokking,
                                           train_in_context, train_scratchpad)
from aigc_course.recipes.classifier import CLASSIFIER_PRESETS, train_classifier
from aigc_course.recipes.diffusion import DIFFUSION_PRESETS, train_diffusion
from aigc_course.recipes.gan import GAN_PRESETS, TOY_PRESETS, epoch_samples_path, train_gan, train_toy_gan
from aigc_course.recipes.gpt import GPT_PRESETS, corpus_source, finetune_gpt, train_gpt
from aigc_course.recipes.text2img import T2I_PRESETS, train_t2i_autoencoder, train_t2i_clip, train_t2i_unet
from aigc_course.recipes.vae import VAE_PRESETS, train_vae


def checkpoint_files(out: Path) -> tuple[Path, ...]:
    """The two files of a checkpoint (or adapter) saved as ``out``: weights and card."""
    return out.with_suffix(".safetensors"), out.with_suffix(".json")


def _metrics_line(preset: str, recipe: Any, result: tuple) -> str:
    """What a saved training run prints: its metrics (the third item ``train_*`` returns)."""
    return ", ".join(f"{k}={v}" for k, v in result[2].items())


def _digits(recipe: Any) -> str:
    return "data/digits.npz"


@dataclass(frozen=True)
class Trainer:
    """One way a family trains: a set of presets and the function that trains them.

    ``train(recipe, out=..., command=..., **options)`` is called when ``saves``
    (``out`` is None without ``--out``); an unsaved trainer gets
    ``train(recipe, **options)`` and ``--out`` is refused with ``not_saved``.
    """

    presets: Mapping[str, Any]            # preset name -> recipe dataclass, e.g. VAE_PRESETS
    train: Callable[..., Any]             # e.g. train_vae
    overrides: tuple[str, ...] = ("epochs", "seed")  # --NAME replaces recipe.NAME (a copy; presets stay as they are)
    options: tuple[str, ...] = ()         # --NAME is passed to train() as NAME= (e.g. iw_k, eval_samples)
    saves: bool = True
    not_saved: str = ""                   # why --out is refused when not ``saves``
    files: Callable[[Path], tuple[Path, ...]] = checkpoint_files  # what a checkpoint saved as ``out`` consists of
    data: Callable[[Any], str] = _digits  # what the recipe trains on, for the asset registry's "source"
    report: Callable[[str, Any, Any], str] = _metrics_line  # (preset, recipe, train's result) -> one line


@dataclass(frozen=True)
class Family:
    """A model family the CLI can train: its default preset and its trainers (presets never repeat)."""

    default: str
    trainers: tuple[Trainer, ...]

    @property
    def presets(self) -> dict[str, Any]:
        return {name: recipe for t in self.trainers for name, recipe in t.presets.items()}

    def trainer(self, preset: str) -> Trainer:
        return next(t for t in self.trainers if preset in t.presets)


def _gan_files(out: Path) -> tuple[Path, ...]:
    return (*checkpoint_files(out), epoch_samples_path(out))  # + one row of samples per epoch (a PNG)


def _toy_line(preset: str, recipe: Any, run: Any) -> str:
    return f"{preset}: {recipe.steps} steps in {run.seconds:.1f} s; {run.final}"


def _corpora(recipe: Any) -> str:
    return ", ".join(corpus_source(c) for c in recipe.corpora)


def _gpt_kind(pretrain: bool, lora: bool) -> dict[str, Any]:
    """GPT_PRESETS split by what they do: pretraining (no ``base``), LoRA or full fine-tuning of a base."""
    return {name: r for name, r in GPT_PRESETS.items()
            if (r.base is None) == pretrain and (pretrain or (r.lora is not None) == lora)}


def _json_only(out: Path) -> tuple[Path, ...]:
    return (out.with_suffix(".json"),)  # measurements (curves, tables and a card), no weights


def _synthetic(recipe: Any) -> str:
    return "synthetic data generated from the seed (aigc_course/data/assistant.py)"


def _measured_line(preset: str, recipe: Any, result: dict) -> str:
    return f"{preset}: measured in {result['duration_s']:.0f} s"


def _chat_line(preset: str, recipe: Any, result: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in result[1].items())


FAMILIES: dict[str, Family] = {
    "vae": Family("vae_conv16", (
        Trainer(VAE_PRESETS, train_vae, overrides=("epochs", "seed", "beta"), options=("iw_k",)),)),
    "classifier": Family("digit_classifier", (Trainer(CLASSIFIER_PRESETS, train_classifier),)),
    "gan": Family("dcgan", (
        Trainer(GAN_PRESETS, train_gan, files=_gan_files),
        Trainer(TOY_PRESETS, train_toy_gan, overrides=("steps", "seed"), saves=False, report=_toy_line,
                not_saved="toy GANs train in seconds and are not saved: leave out --out"))),
    "diffusion": Family("ddpm_digits", (Trainer(DIFFUSION_PRESETS, train_diffusion, options=("eval_samples",)),)),
    "gpt": Family("gpt_char", (
        Trainer(_gpt_kind(pretrain=True, lora=False), train_gpt, overrides=("iters", "seed"), data=_corpora),
        Trainer(_gpt_kind(pretrain=False, lora=True), finetune_gpt, overrides=("iters", "seed"), data=_corpora),
        Trainer(_gpt_kind(pretrain=False, lora=False), finetune_gpt, overrides=("iters", "seed"), saves=False,
                not_saved="it fine-tunes every weight and is not saved; drop --out"))),
    "t2i": Family("t2i_unet", (   # lesson 08: train t2i_autoencoder and t2i_clip before t2i_unet
        Trainer({"t2i_autoencoder": T2I_PRESETS["t2i_autoencoder"]}, train_t2i_autoencoder, overrides=("steps", "seed")),
        Trainer({"t2i_clip": T2I_PRESETS["t2i_clip"]}, train_t2i_clip, overrides=("steps", "seed")),
        Trainer({"t2i_unet": T2I_PRESETS["t2i_unet"]}, train_t2i_unet, overrides=("steps", "seed")))),
    "assistant": Family("chat_sft", (
        Trainer(CHAT_PRESETS, train_chat, overrides=("iters", "seed"), data=_synthetic, report=_chat_line),
        Trainer(EMERGENCE_PRESETS, train_emergence, overrides=("iters", "seed"), files=_json_only, data=_synthetic,
                report=_measured_line),
        Trainer(IN_CONTEXT_PRESETS, train_in_context, overrides=("iters", "seed"), files=_json_only,
                data=_synthetic, report=_measured_line),
        Trainer(GROKKING_PRESETS, train_grokking, overrides=("iters", "seed"), files=_json_only, data=_synthetic,
                report=_measured_line),
        Trainer(SCRATCHPAD_PRESETS, train_scratchpad, overrides=("iters", "seed"), files=_json_only,
                data=_synthetic, report=_measured_line))),
}
