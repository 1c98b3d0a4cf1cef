"""Image-file pieces shared by training data and colorize, torch-free (numpy + PIL) for the ONNX path.

One place for: the image suffixes the project reads, decoding any PIL mode to RGB (+ alpha) at full
precision or to 8-bit RGB over white, EXIF orientation, and the normalisation of L that networks see.
`colorization.data.images` (training) and `colorization.colorize` (users' photos, also without torch)
both import from here, so a file the index accepts is one colorize accepts and decodes the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "IMAGE_SUFFIXES",
    "L_CENT",
    "L_NORM",
    "decode",
    "exif_upright",
    "has_alpha",
    "is_image_file",
    "rgb8_over_white",
    "to_float",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
"""File suffixes (lower case) read as images by the data index and by colorize; others are ignored."""

L_CENT = 50.0
L_NORM = 100.0
"""Networks see L_n = (L - L_CENT) / L_NORM: the values of colorization.color.lab, for the torch-free path."""

_16BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "La", "RGBa", "PA"})


def is_image_file(path: str | Path) -> bool:
    """True when the file's suffix is one the project reads as an image."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def exif_upright(img: Image.Image) -> Image.Image:
    """The image as it is displayed: EXIF orientation applied (photos from phones are stored rotated)."""
    return ImageOps.exif_transpose(img)


def has_alpha(img: Image.Image) -> bool:
    """True when the mode carries transparency (an alpha band, or a palette with a transparent entry)."""
    return img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)


def decode(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any PIL mode → (RGB H×W×3, alpha H×W or None) at full precision: uint8, uint16 (16-bit) or float32.

    16-bit gray and 32-bit integer gray keep their range (I holding only 0..255 counts as 8-bit), float
    gray (F) is read as [0, 1], [0, 255] or [0, 65535] by its maximum; palette, CMYK, YCbCr ... go via PIL.
    """
    mode = img.mode
    if mode in _16BIT_MODES or mode == "I":
        arr = np.asarray(img)
        wide = mode != "I" or arr.max(initial=0) > 255
        gray = np.clip(arr, 0, 65535).astype(np.uint16 if wide else np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        top = arr.max(initial=0.0)
        scale = 1.0 if top <= 1.0 else (255.0 if top <= 255.0 else 65535.0)
        gray = np.clip(arr / np.float32(scale), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    if has_alpha(img):
        rgba = np.asarray(img if mode == "RGBA" else img.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.asarray(img if mode == "RGB" else img.convert("RGB")), None


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / other integer / float image values → float32 in [0, 1] (ValueError if not)."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(arr.dtype, np.integer):
        top = 255.0 if arr.max(initial=0) <= 255 else 65535.0
        return np.clip(arr.astype(np.float32) / np.float32(top), 0.0, 1.0)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("image contains NaN or infinite values")
        if arr.min(initial=0.0) < -1e-6 or arr.max(initial=0.0) > 1.0 + 1e-6:
            raise ValueError("a float image must have values in [0, 1]")
        return np.clip(arr, 0.0, 1.0)
    raise ValueError(f"unsupported image dtype {arr.dtype}")


def rgb8_over_white(img: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB PIL image, transparency composited over white (training sees no alpha)."""
    if img.mode == "RGB":
        return img
    if has_alpha(img):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    rgb, _ = decode(img)
    if rgb.dtype != np.uint8:
        rgb = (to_float(rgb) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")
