"""Numbers that say how good a generative model is, in units people can compare.

:mod:`~aigc_course.metrics.likelihood` (negative ELBO, importance-weighted NLL,
bits per dimension), :mod:`~aigc_course.metrics.images` (FID, precision/recall,
class coverage, nearest neighbours) and :mod:`~aigc_course.metrics.leaderboard`
(one row of numbers per generator of the course), :mod:`~aigc_course.metrics.poems`
(held-out loss per character and the form of generated Chinese poems). Metrics use
models, never recipes.
"""

from aigc_course.metrics.images import (
    frechet_distance,
    feature_statistics,
    classifier_features,
    fid,
    predict_labels,
    class_coverage,
    accuracy,
    nearest_neighbours,
    knn_radii,
    in_manifold,
    precision_recall,
)
from aigc_course.metrics.likelihood import bits_per_dim, negative_elbo, importance_weighted_nll

__all__ = [
    "accuracy",
    "bits_per_dim",
    "class_coverage",
    "classifier_features",
    "feature_statistics",
    "fid",
    "frechet_distance",
    "importance_weighted_nll",
    "in_manifold",
    "knn_radii",
    "nearest_neighbours",
    "negative_elbo",
    "precision_recall",
    "predict_labels",
]
