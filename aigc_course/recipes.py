"""How each shipped checkpoint is trained: one function per model family, shared by CLI and notebooks.

``python -m aigc_course train vae --preset vae_mlp2d`` and a notebook cell with
``TRAIN = True`` both call :func:`train_vae`, so the notebook's model and the
shipped one come from the same code.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from aigc_course import metrics
from aigc_course.checkpoints import save_checkpoint
from aigc_course.data import digit_loaders, load_digits
from aigc_course.env import hardware_summary, pick_device, seed_everything
from aigc_course.models.classifier import ClassifierConfig, DigitClassifier
from aigc_course.models.diffusion import NUM_CLASSES, UNet, UNetConfig, diffusion_loss, sample
from aigc_course.models.vae import VAE, VAEConfig, elbo
from aigc_course.train import History, fit


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
    history = fit(model, vae_step_loss(recipe.beta), train_loader, epochs=recipe.epochs, lr=recipe.lr,
                  evaluate=lambda m: {"test_neg_elbo": metrics.negative_elbo(m, test)},
                  eval_every=5, device=device, max_seconds=max_seconds, progress=progress)
    train_seconds = time.perf_counter() - started
    results = {"test_neg_elbo": round(metrics.negative_elbo(model, test), 2),
               "train_seconds": round(train_seconds, 1), "epochs_run": history.evals[-1]["epoch"]}
    if iw_k:
        nll = metrics.importance_weighted_nll(model, test, k=iw_k)
        results |= {"test_iw_nll": round(nll, 2), "iw_k": iw_k, "test_bits_per_dim": round(metrics.bits_per_dim(nll), 4)}
    if out is not None:
        _save_trained(model.cpu(), out, recipe, results, command, train_seconds, {
            "test_neg_elbo": [(e["epoch"], round(e["test_neg_elbo"], 2)) for e in history.evals],
            "train_loss_per_epoch": _epoch_means(history)})
    return model, history, results


def _save_trained(model, out, recipe, results: dict, command: str, seconds: float, history: dict) -> None:
    """Write the checkpoint with the card every course model carries (recipe, command, seed, hardware, data)."""
    save_checkpoint(model, out, {
        "metrics": results, "recipe": asdict(recipe), "command": command, "seed": recipe.seed,
        "duration_s": round(seconds, 1), "hardware": hardware_summary(),
        "data": "data/digits.npz: 8,000 training digits, 2,000 held out", "history": history})


def _epoch_means(history: History) -> list[float]:
    by_epoch: dict[int, list[float]] = {}
    for row in history.steps:
        by_epoch.setdefault(row["epoch"], []).append(row["loss"])
    return [round(sum(v) / len(v), 2) for _, v in sorted(by_epoch.items())]


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
    history = fit(model, classifier_step_loss, train_loader, epochs=recipe.epochs, lr=recipe.lr,
                  evaluate=lambda m: {"test_accuracy": metrics.accuracy(m, test)}, eval_every=1,
                  device=pick_device(), progress=progress)
    seconds = time.perf_counter() - started
    model = model.cpu().eval()
    results = {"test_accuracy": round(metrics.accuracy(model, test), 4),
               "fid_floor_test_halves": round(metrics.fid(model, test.x[0::2], test.x[1::2]), 3),
               "train_seconds": round(seconds, 1)}
    if out is not None:
        _save_trained(model, out, recipe, results, command, seconds, {
            "test_accuracy": [(e["epoch"], round(e["test_accuracy"], 4)) for e in history.evals]})
    return model, history, results


# --- Lesson 04: diffusion -------------------------------------------------------------------------

@dataclass
class DiffusionRecipe:
    """A class-conditional DDPM on the digits, trained for classifier-free guidance.

    ``label_dropout``: fraction of training labels replaced by the null token, so the
    same network also learns the unconditional model (Ho & Salimans 2022 used 10-20%).
    ``ema``: decay of the exponential moving average of the weights; the EMA
    weights are the ones saved and sampled from (they give visibly cleaner digits
    than the raw weights of a short run).
    """

    model: UNetConfig = field(default_factory=UNetConfig)
    label_dropout: float = 0.15
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    ema: float = 0.995
    seed: int = 0


DIFFUSION_PRESETS = {
    # Sized for a 2-core CPU: ~0.57 M parameters, 1,500 Adam steps of 64 digits.
    "ddpm_digits": DiffusionRecipe(UNetConfig(channels=(16, 32, 64), time_dim=128, dropout=0.0,
                                              schedule="linear", timesteps=1000)),
}


class EMA:
    """Exponential moving average of a model's weights: ema <- decay * ema + (1 - decay) * weights.

    The decay warms up as min(decay, (1 + n) / (10 + n)) so the first updates are not dominated by
    the random initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        import copy

        self.model, self.decay, self.updates = copy.deepcopy(model).eval(), decay, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(p.to(e.device), 1 - d)
            else:
                e.copy_(p)


def diffusion_step_loss(recipe: DiffusionRecipe, ema: EMA | None = None):
    """The per-batch loss for ``fit``: the simple DDPM loss with label dropout.

    The EMA is refreshed at the start of every step from the weights the previous
    optimiser step produced (``fit`` owns the optimiser), and once more after training.
    """
    def step(model: UNet, batch):
        if ema is not None and model.training:
            ema.update(model)
        x, y = batch
        return diffusion_loss(model, 2 * x - 1, y, label_dropout=recipe.label_dropout), {}
    return step


def evaluate_diffusion(model: UNet, n: int = 1000, steps: int = 50, guidance: float = 0.0, seed: int = 0,
                       classifier: DigitClassifier | None = None, progress: bool = False) -> dict:
    """FID (against 1,000 held-out digits, ``test[0::2]``) and class accuracy of n DDIM samples, n/10 per digit.

    The same protocol as the README's VAE FIDs and the real-vs-real floor (``test[0::2]`` vs ``test[1::2]``).
    """
    from aigc_course.checkpoints import load_pretrained

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
    ema = EMA(model, recipe.ema)
    train_loader, _ = digit_loaders(recipe.batch_size, seed=recipe.seed)
    started = time.perf_counter()
    history = fit(model, diffusion_step_loss(recipe, ema), train_loader, epochs=recipe.epochs, lr=recipe.lr,
                  device=device, max_seconds=max_seconds, progress=progress)
    ema.model.to(device)
    ema.update(model)
    train_seconds = time.perf_counter() - started
    model = ema.model.cpu().eval()
    epoch_losses = [round(v, 4) for v in _epoch_means_precise(history)]
    results = {"final_epoch_loss": epoch_losses[-1], "train_seconds": round(train_seconds, 1),
               "epochs_run": history.steps[-1]["epoch"], "steps_run": len(history.steps)}
    if eval_samples:
        results["ddim50_eval"] = evaluate_diffusion(model.to(device), eval_samples, progress=progress)
        model = model.cpu()
    if out is not None:
        _save_trained(model, out, recipe, results, command, train_seconds,
                      {"train_loss_per_epoch": epoch_losses})
    return model, history, results


def _epoch_means_precise(history: History) -> list[float]:
    by_epoch: dict[int, list[float]] = {}
    for row in history.steps:
        by_epoch.setdefault(row["epoch"], []).append(row["loss"])
    return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]
