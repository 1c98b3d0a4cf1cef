"""Colour core: Lab conversion, the ab gamut and prior, soft encoding and decoding, enhancer, colour measures.

Modules, in import order: lab (Lab conversion and normalisation), gamut (the ab bins), nearest (exact
nearest bins), encode (soft encoding, rebalanced cross-entropy, annealed mean), prior (the empirical prior
and its weights), enhance (the saturation enhancer), measures (colourfulness, AuC).
"""

from colorization.color.encode import annealed_mean, rebalanced_cross_entropy, soft_encode
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
from colorization.color.nearest import brute_force_knn, nearest_bins, validate_ab
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
