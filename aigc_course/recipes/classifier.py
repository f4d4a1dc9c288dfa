"""The digit classifier whose features FID, precision/recall and class coverage use (lessons 02-07)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch.nn.functional as F

from aigc_course import metrics
from aigc_course.data.digits import digit_loaders, load_digits
from aigc_course.core.env import pick_device, seed_everything
from aigc_course.models.classifier import ClassifierConfig, DigitClassifier
from aigc_course.train import EvalEvery, History, adam, distributed, fit
from aigc_course.recipes.common import _save_trained


@dataclass
class ClassifierRecipe:
    """The digit classifier whose features FID and class coverage use."""

    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    epochs: int = 20  # held-out accuracy levels off at ~98.5-99% from epoch 10 on
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


CLASSIFIER_PRESETS = {"digit_classifier": ClassifierRecipe()}


def classifier_step_loss(model: DigitClassifier, batch):
    """The per-batch loss for ``fit``: cross-entropy, logging the batch accuracy."""
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits, y), {"accuracy": (logits.argmax(dim=1) == y).float().mean().item()}


def train_classifier(recipe: ClassifierRecipe, *, out: str | Path | None = None, command: str = "",
                     progress: bool = True) -> tuple[DigitClassifier, History, dict]:
    """Train the digit classifier on the 8,000 training digits; report held-out accuracy and the FID floor.

    The *FID floor* is the FID between the two stratified halves of the held-out
    digits: what two samples of real data score against each other, the best a
    generator can hope for with 1,000 images.
    """
    seed_everything(recipe.seed)
    model = DigitClassifier(recipe.model)
    train_loader, _ = digit_loaders(recipe.batch_size, seed=recipe.seed)
    test = load_digits("test")
    started = time.perf_counter()
    every_epoch = EvalEvery(lambda m: {"test_accuracy": metrics.accuracy(m, test)}, every=1, unit="epoch")
    history = fit(model, classifier_step_loss, train_loader, epochs=recipe.epochs, optimizer=adam(recipe.lr),
                  callbacks=[every_epoch], device=pick_device(), progress=progress)
    seconds = time.perf_counter() - started
    if not distributed.is_main():  # under torchrun: rank 0 evaluates and saves
        return model, history, {}
    model = model.cpu().eval()
    results = {"test_accuracy": round(metrics.accuracy(model, test), 4),
               "fid_floor_test_halves": round(metrics.fid(model, test.x[0::2], test.x[1::2]), 3),
               "train_seconds": round(seconds, 1)}
    if out is not None:
        _save_trained(model, out, recipe, results, command, seconds, {
            "test_accuracy": [(e["epoch"], round(e["test_accuracy"], 4)) for e in history.evals]})
    return model, history, results
