"""One evaluation for every image generator in the course: the numbers of lesson 06's leaderboard.

:func:`evaluate_samples` takes generated digits and returns quality (FID,
precision), diversity (recall, class coverage) and memorisation (distance to
the nearest training digit) in one dict, all measured against the same
held-out digits with the same feature network (the shipped digit classifier),
so rows from a VAE, a GAN and a diffusion model compare fairly. Compare rows
only at the same number of samples: FID and k-NN precision/recall depend on N.
"""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course import metrics
from aigc_course.models.hub import load_pretrained
from aigc_course.models.classifier import DigitClassifier


def class_entropy_bits(counts: torch.Tensor) -> float:
    """Entropy (bits) of a label histogram: log2(10) = 3.32 for perfectly balanced digits, 0 for one class."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return -(p * p.log2()).sum().item()


def evaluate_samples(classifier: DigitClassifier, generated: torch.Tensor, real: torch.Tensor,
                     train: torch.Tensor | None = None, k: int = 3) -> dict[str, float]:
    """Quality, diversity and memorisation of ``generated`` digits (N, 1, 28, 28) against ``real`` ones.

    Returns FID (lower is better), k-NN precision and recall (Kynkäänniemi et al.
    2019; higher is better), the classes the classifier finds among the samples
    (``classes_seen``: digits with at least 2% of the samples), the entropy of
    that label histogram, and, with ``train`` given, the median pixel distance
    from each sample to its nearest training digit divided by the same median
    for ``real`` (``nn_ratio``): about 1 for a model that generalises, near 0
    for one that copies its training set.
    """
    if generated.shape[1:] != (1, 28, 28) or real.shape[1:] != (1, 28, 28):
        raise ValueError(f"expected digits (N, 1, 28, 28), got {tuple(generated.shape)} and {tuple(real.shape)}")
    generated = generated.float()
    if generated.min() < 0 or generated.max() > 1:  # clipping here would hide a generator in the wrong range
        raise ValueError(f"generated images must be grey values in [0, 1], got [{generated.min():.3g}, "
                         f"{generated.max():.3g}]: use the generator's public API (VAE.sample / decode_mean, "
                         "DCGAN.generate, diffusion.sample), which return [0, 1]")
    real_features = metrics.classifier_features(classifier, real)
    fake_features = metrics.classifier_features(classifier, generated)
    precision, recall = metrics.precision_recall(real_features, fake_features, k=k)
    counts = metrics.class_coverage(classifier, generated)
    result = {
        "fid": metrics.frechet_distance(*metrics.feature_statistics(real_features),
                                        *metrics.feature_statistics(fake_features)),
        "precision": precision,
        "recall": recall,
        "classes_seen": int((counts >= 0.02 * len(generated)).sum()),
        "class_entropy_bits": class_entropy_bits(counts),
    }
    if train is not None:
        to_train = metrics.nearest_neighbours(generated, train)[0].median()
        real_to_train = metrics.nearest_neighbours(real, train)[0].median()
        result["nn_ratio"] = (to_train / real_to_train).item()
    return result


def fid_versus_n(classifier: DigitClassifier, real: torch.Tensor, generated: torch.Tensor,
                 sizes: list[int], seed: int = 0) -> list[float]:
    """FID of the first ``n`` real and ``n`` generated images (shuffled with ``seed``) for each n in ``sizes``.

    Shows FID's bias: the same two distributions score worse with fewer samples.
    """
    if max(sizes) > min(len(real), len(generated)) or min(sizes) < 2:
        raise ValueError(f"sizes must lie between 2 and {min(len(real), len(generated))}, got {sizes}")
    g = torch.Generator().manual_seed(seed)
    real = metrics.classifier_features(classifier, real[torch.randperm(len(real), generator=g)])
    fake = metrics.classifier_features(classifier, generated[torch.randperm(len(generated), generator=g)])
    return [metrics.frechet_distance(*metrics.feature_statistics(real[:n]),
                                     *metrics.feature_statistics(fake[:n])) for n in sizes]


def pixel_fid(real: torch.Tensor, generated: torch.Tensor) -> float:
    """FID computed on raw pixels (784-D) instead of classifier features: the wrong feature space, for contrast."""
    return metrics.frechet_distance(*metrics.feature_statistics(real.flatten(1)),
                                    *metrics.feature_statistics(generated.flatten(1)))



Sampler = Callable[[int, int], torch.Tensor]
"""``sampler(n, seed)`` returns n digits (n, 1, 28, 28) in [0, 1], the same ones for the same seed."""


def _sample_method(name: str) -> Sampler:
    """A shipped model whose ``.sample(n, generator=...)`` draws digits (the VAEs and GANs)."""
    model, _ = load_pretrained(name)
    return lambda n, seed: model.sample(n, generator=torch.Generator().manual_seed(seed))


def _diffusion_sampler(steps: int) -> Sampler:
    """The shipped diffusion model, unguided DDIM with ``steps`` steps, labels cycling 0..9."""
    from aigc_course.models.diffusion import sample

    model, _ = load_pretrained("ddpm_digits")
    return lambda n, seed: sample(model, n, torch.arange(n) % 10, sampler="ddim", steps=steps,
                                  generator=torch.Generator().manual_seed(seed))


COURSE_GENERATORS: dict[str, tuple[str, Callable[[], Sampler]]] = {
    "VAE (2-D, vae_mlp2d)": ("lesson 01", lambda: _sample_method("vae_mlp2d")),
    "VAE (16-D, vae_conv16)": ("lesson 01", lambda: _sample_method("vae_conv16")),
    "DCGAN (dcgan)": ("lesson 02", lambda: _sample_method("dcgan")),
    "conditional GAN (cgan)": ("lesson 02", lambda: _sample_method("cgan")),  # labels cycle 0..9
    "diffusion (DDIM-20, ddpm_digits)": ("lesson 04", lambda: _diffusion_sampler(20)),
}
"""Every shipped image generator of the course: display name -> (lesson, loader returning a Sampler)."""


def course_generators(names: list[str] | None = None) -> dict[str, Sampler]:
    """Load the shipped generators (all, or those named) as samplers: name -> ``sampler(n, seed)``."""
    names = list(COURSE_GENERATORS) if names is None else names
    unknown = [n for n in names if n not in COURSE_GENERATORS]
    if unknown:
        raise ValueError(f"unknown generator(s) {unknown}; choose from {list(COURSE_GENERATORS)}")
    return {name: COURSE_GENERATORS[name][1]() for name in names}
