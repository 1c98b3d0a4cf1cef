"""Image files, shared by training data and colorize: which suffixes are images, and decoding any PIL mode.

One place for: the image suffixes the project reads, decoding any PIL mode to RGB (+ alpha) at full
precision or to 8-bit RGB over white, and EXIF orientation. `colorization.data.images` (training) and
`colorization.inference` (users' photos, also without torch) both import from here, so a file the index
accepts is one colorize accepts and decodes the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from colorization.imaging.values import to_float, to_uint8

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "decode",
    "exif_upright",
    "has_alpha",
    "is_image_file",
    "rgb8_over_white",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
"""File suffixes (lower case) read as images by the data index and by colorize; others are ignored."""

DEFAULT_MAX_PIXELS = 50_000_000
"""Images with more pixels than this are skipped by the data index and refused by colorize (`--max-pixels`):
decoding them takes seconds and gigabytes (colorize: about 100 bytes per pixel)."""

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
        rgb = to_uint8(to_float(rgb))
    return Image.fromarray(rgb, "RGB")
