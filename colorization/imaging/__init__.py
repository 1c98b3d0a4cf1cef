"""Torch-free image work (numpy + PIL), shared by training data and by the torch-free ONNX inference path.

- files: which suffixes are images, the largest image read by default, decoding any PIL mode (16-bit,
  alpha, EXIF orientation);
- values: integer ↔ float pixel values, and the project's one uint8 quantiser `to_uint8`;
- runtime: the deployable colour runtime, one file needing only numpy, Pillow (and onnxruntime to run a
  model), copied verbatim into deploy bundles: the Lab constants, float32 sRGB ↔ Lab with gamut fit, the
  enhancer, resizing, the annealed mean, a tuned ONNX Runtime Model and the colorize pipeline;
- lab, enhance: the runtime's Lab and enhancer under their package names (the same objects).

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
