"""User hints for a network that takes them (SIGGRAPH17): the `colorize --hints FILE` format, and the planes.

The file is UTF-8 JSON with a list of points::

    {"points": [
        {"x": 412, "y": 230, "rgb": [196, 40, 32]},
        {"x": 80, "y": 600, "rgb": "#3c8c28", "size": 3},
        {"x": 700.5, "y": 95, "ab": [-20, -35]}
    ]}

- ``x``, ``y``: where, in the photo's pixels: x the column and y the row from the top-left corner, as the
  photo is shown (after its EXIF rotation); 0 <= x < width, 0 <= y < height.
- one colour: ``rgb`` (three 0–255 numbers, or "#rrggbb"; only its chroma counts, the photo keeps its own
  lightness) or ``ab`` (CIE Lab a and b, each within ±128).
- ``size`` (optional, default 1): the side, in pixels of the network's input (the photo resized to the
  network's size, 256 by default), of the square the colour is given for; the paper's simulated training
  hints are 1 to 9 pixels wide.
An empty list colorizes automatically. With several inputs, the same points apply to every photo.

The network sees three planes at its input size: the hints' a/110 and b/110 where a hint is, and a mask
that is 1 there and 0 elsewhere (all zero: automatic colorization).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorization.errors import ColorizationError
from colorization.imaging import AB_NORM, rgb_to_lab

__all__ = ["Hint", "hint_planes", "load_hints", "parse_hints"]

_AB_LIMIT = 128.0


@dataclass(frozen=True)
class Hint:
    """One user hint: a point of the photo (pixels), the colour's ab (Lab units) and the patch side."""

    x: float
    y: float
    ab: tuple[float, float]
    size: int = 1


def _number(value: Any, where: str) -> float:
    """A finite number from the file, else a one-line error naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ColorizationError(f"{where} must be a number, got {value!r}")
    return float(value)


def _ab_of(point: dict[str, Any], where: str) -> tuple[float, float]:
    """The hint colour's ab: from "ab" as given, or from "rgb" through the sRGB → Lab conversion."""
    if ("rgb" in point) == ("ab" in point):
        raise ColorizationError(f'{where} needs exactly one colour: "rgb" or "ab"')
    if "ab" in point:
        ab = point["ab"]
        if not isinstance(ab, list | tuple) or len(ab) != 2:
            raise ColorizationError(f"{where}.ab must be [a, b], got {ab!r}")
        a, b = (_number(v, f"{where}.ab") for v in ab)
        if max(abs(a), abs(b)) > _AB_LIMIT:
            raise ColorizationError(f"{where}.ab={[a, b]} is out of range; a and b lie within ±{_AB_LIMIT:g}")
        return a, b
    rgb = point["rgb"]
    if isinstance(rgb, str):
        text = rgb.removeprefix("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ColorizationError(f'{where}.rgb={rgb!r} must be "#rrggbb" or [r, g, b]')
        rgb = [int(text[i : i + 2], 16) for i in (0, 2, 4)]
    if not isinstance(rgb, list | tuple) or len(rgb) != 3:
        raise ColorizationError(f'{where}.rgb must be [r, g, b] (0-255) or "#rrggbb", got {rgb!r}')
    values = [_number(v, f"{where}.rgb") for v in rgb]
    if not all(0.0 <= v <= 255.0 for v in values):
        raise ColorizationError(f"{where}.rgb={rgb!r} is out of range; allowed values: 0 to 255")
    lab = rgb_to_lab(np.asarray(values, dtype=np.float32).reshape(1, 1, 3) / 255.0)
    return float(lab[0, 0, 1]), float(lab[0, 0, 2])


def parse_hints(data: Any, source: str = "hints") -> list[Hint]:
    """The hints of a parsed JSON document ({"points": [...]}); one-line errors naming the bad field."""
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise ColorizationError(f'{source}: expected {{"points": [...]}}, a list of points')
    hints = []
    for i, point in enumerate(data["points"]):
        where = f"{source}: points[{i}]"
        if not isinstance(point, dict):
            raise ColorizationError(f"{where} must be an object with x, y and rgb or ab")
        unknown = sorted(set(point) - {"x", "y", "rgb", "ab", "size"})
        if unknown:
            raise ColorizationError(f"{where} has unknown keys {unknown}; allowed: x, y, rgb, ab, size")
        if "x" not in point or "y" not in point:
            raise ColorizationError(f"{where} needs x and y (pixels)")
        x, y = _number(point["x"], f"{where}.x"), _number(point["y"], f"{where}.y")
        size = point.get("size", 1)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ColorizationError(f"{where}.size={size!r} is out of range; allowed values: integer >= 1")
        hints.append(Hint(x, y, _ab_of(point, where), size))
    return hints


def load_hints(path: str | Path) -> list[Hint]:
    """The hints in a JSON file (the format of this module's docstring)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ColorizationError(f"--hints {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ColorizationError(f"--hints {path}: not a JSON hints file ({err})") from None
    return parse_hints(data, f"--hints {file.name}")


def hint_planes(hints: list[Hint], image_hw: tuple[int, int], net_hw: tuple[int, int]) -> np.ndarray:
    """Hint planes (float32 3×h×w: a/110, b/110, mask) at the network's size for a photo of `image_hw`.

    A point maps to the network pixel that covers it; its square patch (side `size`) is centred there and
    clipped to the image; a later point covers an earlier one. A point outside the photo is an error.
    """
    (H, W), (h, w) = image_hw, net_hw
    planes = np.zeros((3, h, w), dtype=np.float32)
    for i, hint in enumerate(hints):
        if not (0 <= hint.x < W and 0 <= hint.y < H):
            raise ColorizationError(f"hint {i} at ({hint.x:g}, {hint.y:g}) lies outside the {W}×{H} photo")
        row, col = min(h - 1, int(hint.y * h / H)), min(w - 1, int(hint.x * w / W))
        r0, c0 = max(0, row - (hint.size - 1) // 2), max(0, col - (hint.size - 1) // 2)
        r1, c1 = min(h, r0 + hint.size), min(w, c0 + hint.size)
        planes[0, r0:r1, c0:c1] = hint.ab[0] / AB_NORM
        planes[1, r0:r1, c0:c1] = hint.ab[1] / AB_NORM
        planes[2, r0:r1, c0:c1] = 1.0
    return planes
