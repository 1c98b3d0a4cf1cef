"""The saturation enhancer in numpy, float32: the torch-free twin of colorization.color.enhance for ONNX.

One algorithm in both backends. HSV saturation s = (max − min)/max is raised to
s' = s·(1 + w·exp(−|β(s − c)|^α)), clipped to [0, 1], with hue and value kept. For a fixed hue and value
every channel equals v·(1 − s·f(hue)), linear in s, so the result is v − (v − rgb)·s'/s: no round trip
through HSV angles. Images are H×W×3 (any ...×3) with channels last.
"""

from __future__ import annotations

import numpy as np

__all__ = ["enhance_saturation"]


def enhance_saturation(
    rgb: np.ndarray, w: float = 0.8, c: float = 0.2, alpha: float = 2.0, beta: float = 4.0
) -> np.ndarray:
    """Raise weak HSV saturation of sRGB ...×3 in [0, 1] (clipped) to float32 ...×3; hue and value kept."""
    x = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    if x.ndim == 0 or x.shape[-1] != 3:
        raise ValueError(f"rgb must have 3 channels last (...×3), got shape {x.shape}")
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    s = v - np.minimum(np.minimum(r, g), b)
    np.divide(s, v, out=s, where=v > 0)  # where v == 0, max == min: s stays 0
    f32 = np.float32
    boost = np.abs(f32(beta) * (s - f32(c))) ** f32(alpha)
    s_new = np.clip(s * (f32(1.0) + f32(w) * np.exp(-boost)), 0.0, 1.0)
    ratio = np.ones_like(s)
    np.divide(s_new, s, out=ratio, where=s > 0)
    out = np.empty_like(x)
    for i in range(3):
        out[..., i] = v - (v - x[..., i]) * ratio
    return np.clip(out, 0.0, 1.0, out=out)
