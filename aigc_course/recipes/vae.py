"""Lesson 01: how the shipped VAEs (``vae_mlp2d``, ``vae_conv16``) are trained."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path


from aigc_course import metrics
from aigc_course.data.digits import digit_loaders, load_digits
from aigc_course.core.env import pick_device, seed_everything
from aigc_course.models.vae import VAE, VAEConfig, elbo
from aigc_course.train import EvalEvery, History, adam, distributed, fit
from aigc_course.recipes.common import _save_trained


@dataclass
class VAERecipe:
    """Everything that decides a trained VAE: architecture, objective and optimisation."""

    model: VAEConfig = field(default_factory=VAEConfig)
    beta: float = 1.0
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


VAE_PRESETS = {
    # 2-D latent: blurrier, but the whole latent space fits on a screen (the live explorer).
    "vae_mlp2d": VAERecipe(VAEConfig(arch="mlp", latent_dim=2, hidden=512), epochs=60),
    # 16-D convolutional: the better density model and sampler.
    "vae_conv16": VAERecipe(VAEConfig(arch="conv", latent_dim=16, hidden=256), epochs=60),
}


def vae_step_loss(beta: float):
    """The per-batch loss for ``fit``: the beta-weighted negative ELBO, logging both terms."""
    def step(model: VAE, batch):
        x, _ = batch
        terms = elbo(model, x, beta=beta)
        return terms.loss, {"recon": terms.recon.item(), "kl": terms.kl.item()}
    return step


def train_vae(recipe: VAERecipe, *, out: str | Path | None = None, command: str = "",
              iw_k: int = 500, max_seconds: float | None = None, progress: bool = True,
              ) -> tuple[VAE, History, dict]:
    """Train a VAE on the shipped digits; evaluate on the held-out 2,000; optionally save a checkpoint.

    Returns (model, history, metrics). The metrics are the test negative ELBO,
    the importance-weighted NLL with ``iw_k`` samples (skipped when 0) and its
    bits per dimension.
    """
    seed_everything(recipe.seed)
    device = pick_device()
    model = VAE(recipe.model)
    train_loader, _ = digit_loaders(recipe.batch_size, seed=recipe.seed)
    test = load_digits("test")
    started = time.perf_counter()
    every_5 = EvalEvery(lambda m: {"test_neg_elbo": metrics.negative_elbo(m, test)}, every=5, unit="epoch")
    history = fit(model, vae_step_loss(recipe.beta), train_loader, epochs=recipe.epochs,
                  optimizer=adam(recipe.lr), callbacks=[every_5], device=device, max_seconds=max_seconds,
                  progress=progress)
    train_seconds = time.perf_counter() - started
    if not distributed.is_main():  # under torchrun: rank 0 evaluates and saves
        return model, history, {}
    results = {"test_neg_elbo": round(metrics.negative_elbo(model, test), 2),
               "train_seconds": round(train_seconds, 1), "epochs_run": history.evals[-1]["epoch"]}
    if iw_k:
        nll = metrics.importance_weighted_nll(model, test, k=iw_k)
        results |= {"test_iw_nll": round(nll, 2), "iw_k": iw_k, "test_bits_per_dim": round(metrics.bits_per_dim(nll), 4)}
    if out is not None:
        _save_trained(model.cpu(), out, recipe, results, command, train_seconds, {
            "test_neg_elbo": [(e["epoch"], round(e["test_neg_elbo"], 2)) for e in history.evals],
            "train_loss_per_epoch": [round(v, 2) for v in history.epoch_means()]})
    return model, history, results
