"""Colour core: Lab conversion, the ab gamut and prior, soft encoding and decoding, enhancer, colour measures.

Modules, in import order: lab (Lab conversion and normalisation), gamut (the ab bins), encode (nearest
bins, soft encoding, rebalanced cross-entropy, annealed mean), prior (the empirical prior and its weights),
enhance (the saturation enhancer), measures (colourfulness, AuC).

Pure tensor maths, no Lightning; everything runs on the device of its inputs.
"""

from colorization.color.encode import (
    annealed_mean,
    brute_force_knn,
    nearest_bins,
    rebalanced_cross_entropy,
    soft_encode,
    validate_ab,
)
from colorization.color.enhance import enhance_saturation
from colorization.color.gamut import GRID, ABGamut, as_points
from colorization.color.lab import (
    AB_NORM,
    L_CENT,
    L_NORM,
    check_image,
    denormalize_ab,
    denormalize_l,
    l_ab_to_rgb,
    lab_batch,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
)
from colorization.color.measures import ab_auc, colorfulness, rebalanced_pixel_weights
from colorization.color.prior import ColorPrior

__all__ = [
    "AB_NORM",
    "GRID",
    "L_CENT",
    "L_NORM",
    "ABGamut",
    "ColorPrior",
    "ab_auc",
    "annealed_mean",
    "as_points",
    "brute_force_knn",
    "check_image",
    "colorfulness",
    "denormalize_ab",
    "denormalize_l",
    "enhance_saturation",
    "l_ab_to_rgb",
    "lab_batch",
    "lab_to_rgb",
    "nearest_bins",
    "normalize_ab",
    "normalize_l",
    "rebalanced_cross_entropy",
    "rebalanced_pixel_weights",
    "rgb_to_lab",
    "soft_encode",
    "validate_ab",
]
