"""Decoding of image files to 8-bit RGB for training: JPEG draft decoding, crops, probes, huge-file guards.

Mode decoding, EXIF orientation and the suffix list are colorization.imaging's (shared with colorize).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from colorization.imaging import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS  # re-exported (index, datamodule)
from colorization.imaging import IMAGE_SUFFIXES, exif_upright, rgb8_over_white
from colorization.imaging import is_image_file as is_image_file  # re-exported for index.py and sources.py

IMAGE_EXTENSIONS = IMAGE_SUFFIXES
"""File suffixes (lower case) the index looks at: colorization.imaging's one list; others are ignored."""

GRAY_CHROMA = 6
"""An image is gray when 99% of its reduced pixels have max(R,G,B) - min(R,G,B) at most this (of 255)."""

to_rgb = rgb8_over_white
"""Any PIL mode → 8-bit RGB over white (the name sources.py uses)."""

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def open_rgb(path: str | Path | BinaryIO, draft_size: int | None = None) -> Image.Image:
    """Decode a file (a path, or an open binary file such as a shard member) to upright 8-bit RGB; with
    draft_size, JPEGs decode at >= that shorter side (fast)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            if draft_size is not None and img.format == "JPEG":
                w, h = img.size
                scale = draft_size / min(w, h)
                if scale < 1:
                    img.draft("RGB", (max(1, int(w * scale + 0.999)), max(1, int(h * scale + 0.999))))
            img.load()
            return rgb8_over_white(exif_upright(img))


def load_square(path: str | Path | BinaryIO, size: int) -> np.ndarray:
    """Decode, resize the shorter side to size and take the centred size×size square: H×W×3 uint8."""
    img = open_rgb(path, draft_size=size)
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return _resize_box(img, size, (left, top, left + side, top + side))


def load_random_crop(
    path: str | Path | BinaryIO,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """Random resized crop: a box of scale × (area of the centred square), random aspect, resized to size².

    The box is resampled once, straight from the decoded file, so the crop costs what a plain resize costs
    and keeps the detail a second resampling of an already resized image would lose.
    """
    img = open_rgb(path, draft_size=int(size / max(scale[0], 1e-3) ** 0.5 + 0.999))
    w, h = img.size
    area = min(w, h) ** 2 * rng.uniform(*scale)
    aspect = float(np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))))
    cw = min(w, max(1.0, (area * aspect) ** 0.5))
    ch = min(h, max(1.0, (area / aspect) ** 0.5))
    left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    return _resize_box(img, size, (left, top, left + cw, top + ch))


def _resize_box(img: Image.Image, size: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """Resample the box of img to size×size (bilinear, antialiased when shrinking): H×W×3 uint8."""
    if img.size == (size, size) and box == (0, 0, size, size):
        return np.array(img, dtype=np.uint8)
    return np.array(img.resize((size, size), Image.BILINEAR, box=box), dtype=np.uint8)


@dataclass(frozen=True)
class Probe:
    """What the index learns about one file: its size and whether it has chroma, or why it was skipped."""

    width: int = 0
    height: int = 0
    gray: bool = False
    skipped: str | None = None


PROBE_SIDE = 32
"""The gray flag looks at a reduced decode, shorter side at least this (JPEG draft: 1/2 to 1/8 scale)."""


def probe(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Probe:
    """Inspect one file for the index: never raises for a bad file, returns Probe(skipped=reason) instead.

    The whole file is decoded (so damaged files are found here, not in training), but JPEGs at a reduced
    scale (libjpeg's DCT scaling: the cost is then mostly the entropy decoding) and other formats reduced
    before the chroma test; images in a gray mode need no chroma test.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return Probe(skipped="empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    return Probe(w, h, skipped=f"too large ({w}x{h} > {max_pixels} pixels)")
                mode = img.mode
                if img.format == "JPEG":
                    scale = max(1, min(8, min(w, h) // PROBE_SIDE))
                    img.draft(img.mode, (max(1, -(-w // scale)), max(1, -(-h // scale))))
                img.load()
                gray = mode in _GRAY_MODES or _is_gray(img)
        if min(w, h) < 1:
            return Probe(w, h, skipped="zero-sized image")
        return Probe(w, h, gray=gray)
    except Image.DecompressionBombError as exc:
        return Probe(skipped=f"too large ({exc})".split("\n")[0][:160])
    except Image.DecompressionBombWarning:
        return Probe(skipped="too large (PIL decompression-bomb limit)")
    except Image.UnidentifiedImageError:
        return Probe(skipped="not an image")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = str(exc).split("\n")[0][:120] or type(exc).__name__
        return Probe(skipped=f"unreadable ({reason})")


def _is_gray(img: Image.Image) -> bool:
    """True when at most 1% of the (reduced) image's pixels have max(R,G,B) - min(R,G,B) above GRAY_CHROMA."""
    rgb = rgb8_over_white(img)
    factor = min(rgb.size) // PROBE_SIDE
    if factor >= 2:
        rgb = rgb.reduce(factor)  # box filter in C: a PNG decodes at full size, its test need not
    arr = np.asarray(rgb)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # uint8, never negative
    return int(np.count_nonzero(chroma > GRAY_CHROMA)) <= 0.01 * chroma.size
