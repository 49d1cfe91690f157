"""Lesion-level image-quality metrics (Javadi et al. 2024): numpy arrays in, floats out.

- :mod:`advmri.metrics.lesion`: GE, sharpness, ECE, MIE and SSIM of one image pair.
- :mod:`advmri.metrics.edges`: the 8 segments across a lesion's edge.
- :mod:`advmri.metrics.sigmoid`: the batched sigmoid fitter behind sharpness.
- :mod:`advmri.metrics.evaluate`: the table of a stack of images against their truth (one row
  per test sample). Running a network over the dataset is :mod:`advmri.evaluation`'s; nothing
  here imports torch, the models or training.
"""

from advmri.metrics.edges import EdgeSegments, edge_segments, sample_profiles
from advmri.metrics.lesion import (
    MetricResult,
    edge_contrast_error,
    edge_contrast_error_with_reason,
    gradient_error,
    gradient_error_with_reason,
    mie,
    mie_with_reason,
    sharpness,
    sharpness_with_reason,
    sobel_gradients,
    ssim_in_box,
    ssim_in_box_with_reason,
)
from advmri.metrics.sigmoid import SigmoidFit, fit_sigmoids

__all__ = [
    "EdgeSegments",
    "MetricResult",
    "SigmoidFit",
    "edge_contrast_error",
    "edge_contrast_error_with_reason",
    "edge_segments",
    "fit_sigmoids",
    "gradient_error",
    "gradient_error_with_reason",
    "mie",
    "mie_with_reason",
    "sample_profiles",
    "sharpness",
    "sharpness_with_reason",
    "sobel_gradients",
    "ssim_in_box",
    "ssim_in_box_with_reason",
]
