"""Lesson 04: how the class-conditional diffusion model ``ddpm_digits`` is trained."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aigc_course import metrics
from aigc_course.data.digits import digit_loaders, load_digits
from aigc_course.core.env import pick_device, seed_everything
from aigc_course.models.classifier import DigitClassifier
from aigc_course.models.diffusion import NUM_CLASSES, UNet, UNetConfig, diffusion_loss, sample
from aigc_course.models.pixels import to_model_range
from aigc_course.train import EMA, History, WarmupCosine, adam, distributed, fit
from aigc_course.recipes.common import _save_trained

# --- Lesson 04: diffusion -------------------------------------------------------------------------

@dataclass
class DiffusionRecipe:
    """A class-conditional DDPM on the digits, trained for classifier-free guidance.

    ``label_dropout``: fraction of training labels replaced by the null token, so the
    same network also learns the unconditional model (Ho & Salimans 2022 used 10-20%).
    ``ema``: decay of the exponential moving average of the weights; the EMA
    weights are the ones saved and sampled from (they give visibly cleaner digits
    than the raw weights; ``train.EMA`` updates them after every step). ``cosine_decay``
    lowers the learning rate to lr/20 over the run (``train.warmup_cosine``, no warm-up).
    """

    model: UNetConfig = field(default_factory=UNetConfig)
    label_dropout: float = 0.15
    epochs: int = 36
    batch_size: int = 64
    lr: float = 2e-3
    ema: float = 0.999
    cosine_decay: bool = True
    seed: int = 0


DIFFUSION_PRESETS = {
    # Sized for a 2-core CPU: ~0.57 M parameters, 4,500 Adam steps of 64 digits (~27 min on one idle core).
    "ddpm_digits": DiffusionRecipe(UNetConfig(channels=(16, 32, 64), time_dim=128, dropout=0.0,
                                              schedule="linear", timesteps=1000)),
}


def diffusion_step_loss(recipe: DiffusionRecipe):
    """The per-batch loss for ``fit``: the simple DDPM loss with label dropout, on images in [-1, 1]."""
    def step(model: UNet, batch):
        x, y = batch
        return diffusion_loss(model, to_model_range(x), y, label_dropout=recipe.label_dropout), {}
    return step


def evaluate_diffusion(model: UNet, n: int = 1000, steps: int = 50, guidance: float = 0.0, seed: int = 0,
                       classifier: DigitClassifier | None = None, progress: bool = False) -> dict:
    """FID (against 1,000 held-out digits, ``test[0::2]``) and class accuracy of n DDIM samples, n/10 per digit.

    The same protocol as the README's VAE FIDs and the real-vs-real floor (``test[0::2]`` vs ``test[1::2]``).
    """
    from aigc_course.models.hub import load_pretrained

    classifier = classifier or load_pretrained("digit_classifier")[0]
    labels = torch.arange(n) % NUM_CLASSES
    images = sample(model, n, labels, sampler="ddim", steps=steps, guidance=guidance,
                    generator=torch.Generator().manual_seed(seed), progress=progress)
    real = load_digits("test").x[0::2]
    return {"fid": round(metrics.fid(classifier, real, images), 2),
            "class_accuracy": round((metrics.predict_labels(classifier, images) == labels).float().mean().item(), 4),
            "n": n, "sampler": f"ddim-{steps}", "guidance": guidance}


def train_diffusion(recipe: DiffusionRecipe, *, out: str | Path | None = None, command: str = "",
                    eval_samples: int = 1000, max_seconds: float | None = None, progress: bool = True,
                    ) -> tuple[UNet, History, dict]:
    """Train the class-conditional U-Net on the 8,000 training digits; return (EMA model, history, metrics).

    Metrics: the final training loss and, unless ``eval_samples`` is 0, FID and class accuracy of
    ``eval_samples`` DDIM-50 samples (unguided) against the held-out digits.
    """
    seed_everything(recipe.seed)
    device = pick_device()
    model = UNet(recipe.model)
    ema = EMA(recipe.ema)
    train_loader, _ = digit_loaders(recipe.batch_size, seed=recipe.seed)
    started = time.perf_counter()
    history = fit(model, diffusion_step_loss(recipe), train_loader, epochs=recipe.epochs, optimizer=adam(recipe.lr),
                  schedule=WarmupCosine(warmup=0, floor=0.05) if recipe.cosine_decay else None, callbacks=[ema],
                  device=device, max_seconds=max_seconds, progress=progress)
    train_seconds = time.perf_counter() - started
    if not distributed.is_main():  # under torchrun: rank 0 keeps the EMA, evaluates and saves
        return model, history, {}
    model = ema.model.cpu().eval()
    epoch_losses = [round(v, 4) for v in history.epoch_means()]
    results = {"final_epoch_loss": epoch_losses[-1], "train_seconds": round(train_seconds, 1),
               "epochs_run": history.steps[-1]["epoch"], "steps_run": len(history.steps)}
    if eval_samples:
        results["ddim50_eval"] = evaluate_diffusion(model.to(device), eval_samples, progress=progress)
        model = model.cpu()
    if out is not None:
        _save_trained(model, out, recipe, results, command, train_seconds,
                      {"train_loss_per_epoch": epoch_losses})
    return model, history, results
