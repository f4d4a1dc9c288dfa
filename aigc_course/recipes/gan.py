"""Lesson 02: the ring-of-Gaussians toy GAN and the digit GANs (``dcgan``, ``cgan``)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aigc_course import metrics
from aigc_course.data.digits import digit_loaders, load_digits
from aigc_course.core.env import pick_device, seed_everything
from aigc_course.models.classifier import DigitClassifier
from aigc_course.models.gan import (DCGAN, DCGANConfig, ToyGAN, ToyGANConfig, critic_loss_wasserstein,
                                    discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating,
                                    generator_loss_wasserstein, gradient_penalty, mode_coverage, r1_penalty,
                                    ring_centres, sample_ring)
from aigc_course.recipes.common import _save_trained, with_precision
from aigc_course.train import History, Snapshot, distributed, fit, update
from aigc_course.train import autocast as bf16_autocast

TOY_LOSSES = ("vanilla", "saturating", "r1", "wgan-gp")


@dataclass
class ToyRecipe:
    """A GAN on the ring of 8 Gaussians. ``loss``: "vanilla" (non-saturating), "saturating",
    "r1" (non-saturating + R1 penalty with weight ``gamma``) or "wgan-gp" (``critic_steps`` per G step)."""

    model: ToyGANConfig = field(default_factory=ToyGANConfig)
    loss: str = "vanilla"
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    gamma: float = 1.0          # R1 weight (penalty * gamma / 2)
    gp_weight: float = 0.1      # WGAN-GP lambda
    critic_steps: int = 1
    modes: int = 8
    radius: float = 2.0
    std: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in TOY_LOSSES:
            raise ValueError(f"loss must be one of {TOY_LOSSES}, got {self.loss!r}")


TOY_PRESETS = {
    "toy_vanilla": ToyRecipe(loss="vanilla"),
    "toy_r1": ToyRecipe(loss="r1"),
    "toy_wgan_gp": ToyRecipe(loss="wgan-gp", critic_steps=5, lr=1e-4, betas=(0.5, 0.9), gp_weight=0.1),
}


@dataclass
class ToySnapshot:
    """What the toy GAN looked like at one step: generated points and D's output on a grid."""

    step: int
    samples: torch.Tensor   # (n, 2)
    surface: torch.Tensor   # (grid, grid): sigmoid(D) for the GAN losses, the critic's score for WGAN
    coverage: object        # ModeCoverage of 2,000 samples


@dataclass
class ToyRun:
    """A trained toy GAN with its replay: snapshots every few steps, the History, the seconds it took."""

    recipe: ToyRecipe
    model: ToyGAN
    snapshots: list[ToySnapshot]
    history: History
    seconds: float
    span: float = 3.0

    @property
    def final(self):
        return self.snapshots[-1].coverage


def _toy_d_loss(recipe: ToyRecipe, model: ToyGAN, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real_logits, fake_logits = model.discriminate(real), model.discriminate(fake)
    if recipe.loss == "wgan-gp":
        return (critic_loss_wasserstein(real_logits, fake_logits)
                + recipe.gp_weight * gradient_penalty(model.discriminate, real, fake))
    loss = discriminator_loss(real_logits, fake_logits)
    if recipe.loss == "r1":
        loss = loss + recipe.gamma / 2 * r1_penalty(model.discriminate, real)
    return loss


def _toy_g_loss(recipe: ToyRecipe, fake_logits: torch.Tensor) -> torch.Tensor:
    if recipe.loss == "wgan-gp":
        return generator_loss_wasserstein(fake_logits)
    if recipe.loss == "saturating":
        return generator_loss_saturating(fake_logits)
    return generator_loss_nonsaturating(fake_logits)


@torch.no_grad()
def _toy_snapshot(recipe: ToyRecipe, model: ToyGAN, step: int, z_fixed: torch.Tensor, grid_xy: torch.Tensor,
                  grid: int) -> ToySnapshot:
    samples = model.generate(z_fixed)
    scores = model.discriminate(grid_xy)
    surface = scores if recipe.loss == "wgan-gp" else torch.sigmoid(scores)
    coverage = mode_coverage(samples, ring_centres(recipe.modes, recipe.radius), recipe.std)
    return ToySnapshot(step, samples.clone(), surface.view(grid, grid).clone(), coverage)


def train_toy_gan(recipe: ToyRecipe, *, snapshot_every: int = 100, n_samples: int = 2000, grid: int = 64,
                  span: float = 3.0, progress: bool = False) -> ToyRun:
    """Train a GAN on the ring of Gaussians (seconds on a CPU), keeping snapshots for a replay.

    One iteration = ``critic_steps`` updates of D on fresh real and fake batches,
    then one update of G: Algorithm 1 of Goodfellow et al. 2014 (with Adam
    instead of plain SGD, and k = critic_steps). Snapshot k holds 2,000 samples
    from *fixed* noise, so the replay shows G moving, not the noise changing.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MLPs this small run fastest on one thread (and far faster on a busy machine)
    try:
        return _train_toy_gan(recipe, snapshot_every, n_samples, grid, span, progress)
    finally:
        torch.set_num_threads(threads)


def players_adam(lr: float, betas: tuple[float, float]) -> dict:
    """Optimiser factories for ``fit``: one Adam for G, one for D, each over its own player's weights."""
    return {"g": lambda m: torch.optim.Adam(m.generator.parameters(), lr=lr, betas=betas),
            "d": lambda m: torch.optim.Adam(m.discriminator.parameters(), lr=lr, betas=betas)}


def toy_gan_step(recipe: ToyRecipe):
    """The update step for ``fit``: ``critic_steps`` updates of D, then one of G (batch from :func:`toy_batches`)."""
    def step(model: ToyGAN, batch, optimizers) -> dict[str, float]:
        reals, zs, z_g = batch
        for real, z in zip(reals, zs):
            d_loss = _toy_d_loss(recipe, model, real, model.generate(z).detach())
            update(optimizers["d"], d_loss)
        g_loss = _toy_g_loss(recipe, model.discriminate(model.generate(z_g)))
        update(optimizers["g"], g_loss)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
    return step


def toy_batches(recipe: ToyRecipe, latent_dim: int, gen: torch.Generator):
    """Batch sampler for ``fit``: per critic step a real batch and a noise batch, then G's noise batch."""
    def draw():
        reals, zs = [], []
        for _ in range(recipe.critic_steps):
            reals.append(sample_ring(recipe.batch_size, recipe.modes, recipe.radius, recipe.std, generator=gen))
            zs.append(torch.randn(recipe.batch_size, latent_dim, generator=gen))
        return reals, zs, torch.randn(recipe.batch_size, latent_dim, generator=gen)
    return draw


def _train_toy_gan(recipe: ToyRecipe, snapshot_every: int, n_samples: int, grid: int, span: float,
                   progress: bool) -> ToyRun:
    gen = seed_everything(recipe.seed)
    model = ToyGAN(recipe.model)
    z_fixed = torch.randn(n_samples, model.latent_dim, generator=gen)
    if distributed.rank() > 0:  # under torchrun: each rank draws its own batches (rank 0 as a single process)
        gen = torch.Generator().manual_seed(distributed.rank_seed(recipe.seed))
    axis = torch.linspace(-span, span, grid)
    gy, gx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # row 0 at the top (y = +span)
    grid_xy = torch.stack([gx, gy], dim=-1).view(-1, 2)
    frames = Snapshot(lambda s: _toy_snapshot(recipe, s.model, s.step, z_fixed, grid_xy, grid), every=snapshot_every)
    history = fit(model, toy_gan_step(recipe), toy_batches(recipe, model.latent_dim, gen), steps=recipe.steps,
                  optimizer=players_adam(recipe.lr, recipe.betas), callbacks=[frames],
                  progress=progress, desc=f"toy GAN ({recipe.loss})")
    return ToyRun(recipe, model.eval(), frames.snapshots, history, history.seconds, span)


@dataclass
class GANRecipe:
    """A DCGAN (or class-conditional GAN) on the digits: Adam(lr, betas) as Radford et al. 2015 advise."""

    model: DCGANConfig = field(default_factory=DCGANConfig)
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    bf16: bool | None = None  # bfloat16 autocast; None: where the hardware computes in it (bf16_supported)
    seed: int = 0


GAN_PRESETS = {
    # channels=32 keeps a run inside the 15-minute budget on 2 busy cores. bf16 autocast made a step ~1.8x
    # faster on the 2-core AMD EPYC the shipped pair was trained on, and 1.7x slower on an Intel Xeon that
    # has AVX-512F but no BF16 (72 against 43 ms a batch of 64): so only where bf16_supported() says so.
    "dcgan": GANRecipe(DCGANConfig(latent_dim=64, channels=32, num_classes=0), epochs=20),
    "cgan": GANRecipe(DCGANConfig(latent_dim=64, channels=32, num_classes=10), epochs=20),
}


def gan_train_step(model: DCGAN, opt_g, opt_d, real: torch.Tensor, labels: torch.Tensor | None,
                   generator: torch.Generator | None = None, autocast: bool = False) -> dict[str, float]:
    """One iteration of Algorithm 1 (k = 1) with the non-saturating generator loss.

    ``real`` (B, 1, 28, 28) in [0, 1]. First D: one step down
    -log D(x) - log(1 - D(G(z))); then G: one step down -log D(G(z)) on a fresh z.
    Returns the two losses and D's mean probabilities on real and fake images.
    """
    device = real.device
    b = len(real)
    x = DCGAN.to_model_range(real)
    fake_labels = None
    if model.conditional:
        fake_labels = torch.randint(model.config.num_classes, (b,), generator=generator).to(device)
    z = torch.randn(b, model.latent_dim, generator=generator).to(device)
    with bf16_autocast(device, autocast):
        fake = model.generate_raw(z, fake_labels)
        real_logits = model.discriminate(x, labels).float()
        fake_logits = model.discriminate(fake.detach(), fake_labels).float()
        d_loss = discriminator_loss(real_logits, fake_logits)
    update(opt_d, d_loss)
    with bf16_autocast(device, autocast):
        g_loss = generator_loss_nonsaturating(model.discriminate(fake, fake_labels).float())
    update(opt_g, g_loss)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}


def gan_step(generator: torch.Generator, bf16: bool):
    """The update step for ``fit``: :func:`gan_train_step` on a (digits, labels) batch."""
    def step(model: DCGAN, batch, optimizers) -> dict[str, float]:
        x, y = batch
        return gan_train_step(model, optimizers["g"], optimizers["d"], x, y if model.conditional else None,
                              generator=generator, autocast=bf16)
    return step


def epoch_summary(history: History) -> dict[str, list]:
    """Per-epoch means of the two losses and D's outputs (the card's ``history``, the lesson's curves)."""
    keys = ("d_loss", "g_loss", "d_real", "d_fake")
    return {"epoch": sorted({row["epoch"] for row in history.steps}),
            **{k: [round(v, 4) for v in history.epoch_means(k)] for k in keys}}


def evaluate_gan(model: DCGAN, classifier: DigitClassifier | None = None, *, n_fid: int = 1000,
                 n_coverage: int = 10_000, seed: int = 0) -> dict:
    """Sample quality of a digit GAN with the course's digit classifier.

    * ``fid``: FID of ``n_fid`` samples against the even-indexed 1,000 held-out
      digits (the same N and reference set as the VAEs' 223 and the 13.6 floor);
    * ``class_coverage``: the classifier's label histogram of ``n_coverage`` samples;
      for a conditional GAN also ``label_accuracy``, the share of samples the
      classifier labels as the class they were asked for.
    """
    from aigc_course.models.hub import load_pretrained

    if classifier is None:
        classifier, _ = load_pretrained("digit_classifier")
    classifier = classifier.to(next(model.parameters()).device)
    test = load_digits("test")
    gen = torch.Generator().manual_seed(seed)
    samples = model.sample(n_coverage, generator=gen)
    results = {"fid": round(metrics.fid(classifier, test.x[0::2], samples[:n_fid]), 1), "fid_n": n_fid}
    predicted = metrics.predict_labels(classifier, samples)
    results["class_coverage"] = torch.bincount(predicted, minlength=10).tolist()
    results["coverage_n"] = n_coverage
    if model.conditional:
        asked = torch.arange(n_coverage) % model.config.num_classes
        results["label_accuracy"] = round((predicted == asked).float().mean().item(), 4)
    return results


def train_gan(recipe: GANRecipe, *, out: str | Path | None = None, command: str = "",
              max_seconds: float | None = None, progress: bool = True, evaluate: bool = True,
              callbacks=()) -> tuple[DCGAN, History, dict]:
    """Train a DCGAN / conditional GAN on the 8,000 training digits; optionally save a checkpoint.

    Returns (model, history, metrics); :func:`epoch_summary` (history) gives the
    per-epoch mean losses and D's mean outputs. With ``out``, 16 samples per epoch
    from fixed noise are saved beside the checkpoint (NAME_epochs.png).
    ``callbacks`` are passed to ``fit`` (e.g. a live plot's ``on_epoch_end``).
    """
    seed_everything(recipe.seed)
    gen = torch.Generator().manual_seed(distributed.rank_seed(recipe.seed))  # each rank its own noise
    device = pick_device()
    recipe = with_precision(recipe, device)  # the card records what ran
    model = DCGAN(recipe.model).to(device)
    train_loader, _ = digit_loaders(recipe.batch_size, seed=recipe.seed)
    z_fixed = torch.randn(16, model.latent_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    fixed_labels = (torch.arange(16) % 10).to(device) if model.conditional else None
    samples = Snapshot(lambda s: s.model.generate(z_fixed, fixed_labels).cpu(), unit="epoch", at_start=False,
                       final=False)
    started = time.perf_counter()
    history = fit(model, gan_step(gen, recipe.bf16), train_loader, epochs=recipe.epochs,
                  optimizer=players_adam(recipe.lr, recipe.betas), callbacks=[samples, *callbacks],
                  device=device, max_seconds=max_seconds, progress=progress, desc="GAN training")
    train_seconds = time.perf_counter() - started
    if not distributed.is_main():  # under torchrun: rank 0 evaluates and saves
        return model, history, {}
    model = model.cpu().eval()
    results = {"train_seconds": round(train_seconds, 1), "epochs_run": history.steps[-1]["epoch"]}
    if evaluate:
        results |= evaluate_gan(model)
    if out is not None:
        _save_trained(model, out, recipe, results, command, train_seconds, epoch_summary(history))
        save_epoch_samples(samples.snapshots, epoch_samples_path(out))
    return model, history, results


def epoch_samples_path(out: str | Path) -> Path:
    """Where ``train_gan`` writes the per-epoch samples of checkpoint ``out``: NAME_epochs.png beside it."""
    out = Path(out).with_suffix("")
    return out.with_name(out.name + "_epochs.png")


def save_epoch_samples(samples: list[torch.Tensor], path: Path) -> Path:
    """One row of 16 samples (fixed noise) per epoch, as a grey PNG (28x28 digits, 2-pixel gaps)."""
    from aigc_course.views.plots import grid_array, save_png

    return save_png(grid_array(torch.cat(samples), nrow=16), path, scale=1)
