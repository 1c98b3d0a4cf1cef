"""Pixel values between integer and float: any image dtype to float32 in [0, 1], and back to 8 or 16 bits.

The project's one 8-bit quantiser (float [0, 1] → uint8 with rounding, `to_uint8`) is the runtime's, the
module deploy bundles carry: colorize, bundles, the training loader and anything that shows a picture
(callbacks, reports) write 8-bit pixels the same way. 16 bits round the same way here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colorization.imaging.runtime import to_uint8

__all__ = ["to_float", "to_uint8", "to_uint16"]


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


def _quantise(x: Any, dtype: type[np.unsignedinteger]) -> np.ndarray:
    """Clip float values to [0, 1] and round them to the full range of an unsigned integer dtype."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    top = np.iinfo(dtype).max
    return (np.clip(x, 0.0, 1.0) * x.dtype.type(top) + x.dtype.type(0.5)).astype(dtype)


def to_uint16(x: Any) -> np.ndarray:
    """Quantise float values in [0, 1] to uint16 with rounding, as `to_uint8` does (16-bit outputs)."""
    return _quantise(x, np.uint16)
