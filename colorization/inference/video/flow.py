"""Dense optical flow on lightness (OpenCV's Farneback), warping, and the forward-backward occlusion test.

Flows are H×W×2 float32 (dx, dy) in pixels. `flow(a, b)` maps frame b's pixels back to a: b(x) ≈ a(x +
flow(x)), so `warp(a_values, flow(a, b))` brings what was at a to b's grid. A pixel is reliable when the
flow there and the reverse flow at its destination cancel (Sundaram et al., ECCV 2010:
|f + g|² ≤ 0.01 (|f|² + |g|²) + 0.5) and its destination lies inside the frame; elsewhere it is occluded
(or uncovered) and has no past to borrow from.
"""

from __future__ import annotations

import numpy as np

from colorization.inference.video.io import require

__all__ = ["flow", "lightness8", "reliable", "warp"]


def lightness8(L: np.ndarray) -> np.ndarray:
    """L in Lab units (0..100) as the uint8 image the flow is computed on."""
    return np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Farneback flow from b's grid into a (uint8 H×W lightness both): b(x) ≈ a(x + flow(x))."""
    cv2 = require("cv2")
    win = max(5, min(15, min(a.shape) // 6) | 1)  # small frames need a small window
    return cv2.calcOpticalFlowFarneback(b, a, None, 0.5, 3, win, 3, 5, 1.1, 0)


def _grid(flw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flw[..., 0], ys + flw[..., 1]


def warp(values: np.ndarray, flw: np.ndarray) -> np.ndarray:
    """Sample C×H×W values (float32) at x + flow(x), bilinearly (border values replicated)."""
    cv2 = require("cv2")
    mx, my = _grid(flw)
    return np.stack(
        [
            cv2.remap(
                np.ascontiguousarray(c, np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            for c in values
        ]
    )


def reliable(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Boolean H×W: where back (current → previous) and fwd (previous → current) agree and stay inside."""
    g = warp(np.moveaxis(fwd, 2, 0), back)  # fwd at each pixel's destination, 2×H×W
    f = np.moveaxis(back, 2, 0)
    s = f + g
    ok = (s**2).sum(0) <= 0.01 * ((f**2).sum(0) + (g**2).sum(0)) + 0.5
    mx, my = _grid(back)
    h, w = back.shape[:2]
    return ok & (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
