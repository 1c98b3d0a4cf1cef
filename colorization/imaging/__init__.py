"""Torch-free image work (numpy + PIL), shared by training data and by the torch-free ONNX inference path.

- files: which suffixes are images, the largest image read by default, decoding any PIL mode (16-bit,
  alpha, EXIF orientation);
- values: integer ↔ float pixel values, and the project's one uint8 quantiser `to_uint8`;
- lab: the Lab constants (L_CENT, L_NORM, AB_NORM, defined here once) and numpy sRGB ↔ Lab with gamut fit;
- enhance: the saturation enhancer, the same closed form as colorization.color.enhance.

Nothing here imports torch or scikit-image, so `colorize --onnx` runs with numpy, PIL and onnxruntime.
"""

from colorization.imaging.enhance import enhance_saturation
from colorization.imaging.files import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    decode,
    exif_upright,
    has_alpha,
    is_image_file,
    rgb8_over_white,
)
from colorization.imaging.lab import AB_NORM, L_CENT, L_NORM, lab_to_rgb, rgb_to_lab
from colorization.imaging.values import to_float, to_uint8, to_uint16

__all__ = [
    "AB_NORM",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "L_CENT",
    "L_NORM",
    "decode",
    "enhance_saturation",
    "exif_upright",
    "has_alpha",
    "is_image_file",
    "lab_to_rgb",
    "rgb8_over_white",
    "rgb_to_lab",
    "to_float",
    "to_uint8",
    "to_uint16",
]
