"""``python -m colorization.colorize``: the colorize command, kept at its documented address.

The code lives in colorization.inference (cli: the command; colorizer: the Colorizer; files, backends,
info); the names below are re-exported so that ``from colorization.colorize import Colorizer`` keeps
working. The numpy colour functions are colorization.imaging's (old names kept as aliases).
"""

import sys

from colorization.imaging import enhance_saturation as enhance_saturation_np
from colorization.imaging import lab_to_rgb as fit_to_gamut
from colorization.imaging import rgb_to_lab as rgb_to_lab_np
from colorization.imaging import to_uint8
from colorization.inference.backends import (
    Backend,
    OnnxBackend,
    TorchBackend,
    load_model,
    torch_device,
    trained_size,
)
from colorization.inference.cli import build_parser, main
from colorization.inference.colorizer import Colorizer
from colorization.inference.files import FORMATS, collect_inputs, read_image, split_array, split_pil, to_pil
from colorization.inference.info import DEFAULT_SIZE, ONNX_HINT, ModelInfo, require

__all__ = [
    "DEFAULT_SIZE",
    "FORMATS",
    "ONNX_HINT",
    "Backend",
    "Colorizer",
    "ModelInfo",
    "OnnxBackend",
    "TorchBackend",
    "build_parser",
    "collect_inputs",
    "enhance_saturation_np",
    "fit_to_gamut",
    "load_model",
    "main",
    "read_image",
    "require",
    "rgb_to_lab_np",
    "split_array",
    "split_pil",
    "to_pil",
    "to_uint8",
    "torch_device",
    "trained_size",
]

if __name__ == "__main__":
    sys.exit(main())
