"""Responsible AIGC in code: detecting generated images, and watermarking images and text.

Lesson 07 measures these tools rather than just describing them:
:mod:`~aigc_course.responsible.detectors` (post-processing and a real-vs-generated
detector) and :mod:`~aigc_course.responsible.watermarks` (image and text watermarks).
"""

from aigc_course.responsible.detectors import (
    PERTURBATIONS,
    add_noise,
    detector_accuracy,
    gaussian_blur,
    jpeg,
    quantise,
    train_detector,
)
from aigc_course.responsible.watermarks import (
    ImageWatermark,
    TextWatermark,
    dct2,
    dct_matrix,
    idct2,
    psnr,
    sample_tokens,
)

__all__ = [
    "PERTURBATIONS",
    "ImageWatermark",
    "TextWatermark",
    "add_noise",
    "dct2",
    "dct_matrix",
    "detector_accuracy",
    "gaussian_blur",
    "idct2",
    "jpeg",
    "psnr",
    "quantise",
    "sample_tokens",
    "train_detector",
]
