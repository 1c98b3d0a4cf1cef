"""CIE Lab <-> sRGB in numpy, float32 (D65, 2°): the names under which the package uses the runtime's Lab.

The implementation is colorization.imaging.runtime (one file, copied verbatim into deploy bundles); the
constants of the conversion and of the networks' normalisation (L_CENT, L_NORM, AB_NORM) are defined there
once, and colorization.color.lab imports them from here, so both backends compute the same Lab.
"""

from colorization.imaging.runtime import (
    AB_NORM,
    D65_WHITE,
    F_EPS,
    F_SLOPE,
    L_CENT,
    L_NORM,
    SRGB_KNEE,
    XYZ_FROM_RGB,
    lab_planes_to_rgb,
    lab_to_rgb,
    lightness,
    rgb_to_lab,
)

__all__ = [
    "AB_NORM",
    "D65_WHITE",
    "F_EPS",
    "F_SLOPE",
    "L_CENT",
    "L_NORM",
    "SRGB_KNEE",
    "XYZ_FROM_RGB",
    "lab_planes_to_rgb",
    "lab_to_rgb",
    "lightness",
    "rgb_to_lab",
]
