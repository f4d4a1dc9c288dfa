"""Sample-quality metrics computed on features of real and generated images.

The Fréchet distance between Gaussians fitted to features of real and
generated images (FID, Heusel et al. 2017), with the course's digit classifier
as the feature network; class coverage (how the classifier labels the
samples); nearest neighbours; and k-NN precision and recall (Kynkäänniemi et
al. 2019).
"""
from __future__ import annotations

import torch

from aigc_course.data.digits import DigitDataset
from aigc_course.models.classifier import DigitClassifier


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Fréchet (2-Wasserstein) distance squared between N(mu1, cov1) and N(mu2, cov2).

        d^2 = ||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1^1/2 cov2 cov1^1/2)^1/2)

    The cross term is computed as the square root of a *symmetric* PSD matrix
    (eigenvalues clamped at 0), in float64, which stays real and stable where a
    general ``sqrtm(cov1 @ cov2)`` can return complex noise.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"mismatched statistics: means {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
                         f"covariances {tuple(cov1.shape)}, {tuple(cov2.shape)}")
    root1 = _sqrt_psd(cov1)
    cross = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp(min=0).sqrt().sum()
    return ((mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * cross).item()


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of a feature matrix (N, D)."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need a feature matrix (N >= 2, D), got {tuple(features.shape)}")
    features = features.double()
    return features.mean(dim=0), torch.cov(features.T)


@torch.no_grad()
def _in_batches(module: torch.nn.Module, function, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``function(batch)`` over images in batches on the module's device, concatenated on the CPU."""
    module.eval()
    device = next(module.parameters()).device
    return torch.cat([function(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)])


def classifier_features(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The classifier's 128-D features of images (N, 1, 28, 28) in [0, 1]."""
    return _in_batches(classifier, classifier.features, images, batch_size)


def fid(classifier: DigitClassifier, real: torch.Tensor, generated: torch.Tensor) -> float:
    """FID between two image sets, with the digit classifier's features. Lower is better; 0 for equal sets.

    FID is biased upwards for small sets: compare models only at the same N.
    """
    return frechet_distance(*feature_statistics(classifier_features(classifier, real)),
                            *feature_statistics(classifier_features(classifier, generated)))


def predict_labels(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The classifier's digit label (N,) for images (N, 1, 28, 28)."""
    return _in_batches(classifier, lambda x: classifier(x).argmax(dim=1), images, batch_size)


def class_coverage(classifier: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """How many of ``images`` the classifier assigns to each digit: a tensor (10,) of counts."""
    return torch.bincount(predict_labels(classifier, images), minlength=10)


def accuracy(classifier: DigitClassifier, data: DigitDataset) -> float:
    """Fraction of ``data`` the classifier labels correctly."""
    return (predict_labels(classifier, data.x) == data.labels).float().mean().item()


def nearest_neighbours(queries: torch.Tensor, references: torch.Tensor, k: int = 1,
                       batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances (N, k) and indices (N, k) of each query's ``k`` nearest references.

    Rows are flattened, so images (N, 1, 28, 28) and feature vectors (N, D) both work.
    Used for memorisation checks (is a sample a copy of a training image?) and k-NN radii.
    """
    queries, references = queries.flatten(1).float(), references.flatten(1).float()
    if queries.shape[1] != references.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} values per row, references {references.shape[1]}")
    if not 1 <= k <= len(references):
        raise ValueError(f"k must be between 1 and the number of references ({len(references)}), got {k}")
    distances, indices = [], []
    for start in range(0, len(queries), batch_size):
        d, i = torch.cdist(queries[start:start + batch_size], references).topk(k, dim=1, largest=False)
        distances.append(d)
        indices.append(i)
    return torch.cat(distances), torch.cat(indices)


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Distance from each row to its k-th nearest *other* row: the radius of its k-NN ball (N,)."""
    distances, _ = nearest_neighbours(features, features, k=k + 1)  # the nearest is the row itself
    return distances[:, k]


def in_manifold(queries: torch.Tensor, references: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Boolean (N,): does each query fall inside at least one reference's k-NN ball?"""
    queries, references = queries.flatten(1).float(), references.flatten(1).float()
    inside = torch.zeros(len(queries), dtype=torch.bool)
    for start in range(0, len(queries), 1024):
        d = torch.cdist(queries[start:start + 1024], references)
        inside[start:start + 1024] = (d <= radii.unsqueeze(0)).any(dim=1)
    return inside


def precision_recall(real_features: torch.Tensor, generated_features: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall for generative models (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each reaching
    that point's k-th nearest neighbour in the same set. Precision: the share of
    generated samples inside the real manifold (are samples realistic?). Recall:
    the share of real images inside the generated manifold (is all of the data
    covered?). Both in [0, 1]; higher is better. The paper uses k = 3.
    """
    precision = in_manifold(generated_features, real_features, knn_radii(real_features, k)).float().mean()
    recall = in_manifold(real_features, generated_features, knn_radii(generated_features, k)).float().mean()
    return precision.item(), recall.item()
