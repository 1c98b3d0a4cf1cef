"""CIE Lab <-> sRGB in numpy, float32 (D65, 2°): the torch-free twin of colorization.color.lab for ONNX.

The constants of the conversion and of the networks' normalisation (L_CENT, L_NORM, AB_NORM) are defined
here once; colorization.color.lab imports them, so both backends compute the same Lab.

sRGB → Lab: undo the sRGB curve, multiply by the sRGB → XYZ matrix divided by the D65 white, apply the
CIE function f (cube root above F_EPS, the line F_SLOPE·t + 16/116 below), then L = 116·f(Y) − 16,
a = 500·(f(X) − f(Y)), b = 200·(f(Y) − f(Z)). Lab → sRGB runs the same steps backwards. Both curves are
written without branches, as in the torch kernel: a two-piece curve equals its power piece at
max(t, knee) plus its linear piece at min(t, knee), less the value both pieces share at the knee.

Lab → sRGB fits the gamut instead of clipping: clipping the RGB of an out-of-gamut colour changes its
lightness, so each such pixel's chroma (a, b together, hence its hue) is scaled by the largest factor in
[0, 1] that keeps its linear RGB inside [−eps, 1 + eps], found by bisection (2^−steps precise; gray,
factor 0, is always inside). L stays the input's; in-gamut colours get the plain inverse.

Images are H×W×3 (any ...×3) with channels last. Work is done on chunks of pixels that stay in cache,
each turned into three planes; the 3×3 products are written as multiply-adds on those planes, because
BLAS (what `@` calls) starts threads for such thin products that stall on a busy machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "AB_NORM",
    "D65_WHITE",
    "F_EPS",
    "F_SLOPE",
    "L_CENT",
    "L_NORM",
    "SRGB_KNEE",
    "XYZ_FROM_RGB",
    "lab_to_rgb",
    "rgb_to_lab",
]

L_CENT = 50.0
L_NORM = 100.0
AB_NORM = 110.0
"""Networks see L_n = (L - L_CENT) / L_NORM and ab_n = ab / AB_NORM: the constants of Zhang et al.'s code."""

XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
"""Linear sRGB → CIE XYZ, the matrix of Kornia's rgb_to_lab and scikit-image's rgb2lab."""
D65_WHITE = (0.95047, 1.0, 1.08883)
"""XYZ of the D65 white point for the 2° observer."""
SRGB_KNEE = 0.04045
"""sRGB values up to this are linear (t / 12.92), above it a power 2.4 curve."""
F_EPS = 0.008856
F_SLOPE = 7.787
"""CIE f(t) is F_SLOPE·t + 16/116 at and below F_EPS, the cube root above."""

_CHUNK = 1 << 16  # pixels per pass: temporaries of 256 KiB a plane, which stay in cache
_F32 = np.float32
_LIN_KNEE = SRGB_KNEE / 12.92  # the sRGB knee in linear light
_F_KNEE = 6.0 / 29.0  # f at F_EPS: where the inverse of f changes piece
_K = 1.055**-2.4  # linear = _K·(t + 0.055)^2.4 above the knee
# linear = _K·((max(t, knee) + 0.055)^2.4 + min(t, knee)/(12.92 _K) − c/_K), with c the value both pieces
# share at the knee (they meet to 3e-9; the mean is taken): the factor _K moves into the XYZ matrix
_KNEE_VALUE = (_LIN_KNEE + _K * (SRGB_KNEE + 0.055) ** 2.4) / 2
# f(t) + F_SLOPE·F_EPS = max(t, eps)^(1/3) + F_SLOPE·min(t, eps); this shift, less 16/116, gives L directly
_F_SHIFT = 16.0 / 116.0 + F_SLOPE * F_EPS
_XYZ = (np.array(XYZ_FROM_RGB) / np.array(D65_WHITE)[:, None] * _K).astype(np.float32)  # → XYZ / white
_RGB = (np.linalg.inv(np.array(XYZ_FROM_RGB)) * np.array(D65_WHITE)[None, :]).astype(np.float32)


def _product(m: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """m @ planes for a 3×3 float32 matrix and 3×n planes, as multiply-adds (no BLAS)."""
    out = np.empty_like(planes)
    tmp = np.empty_like(planes[0])
    for i in range(3):
        np.multiply(planes[0], m[i, 0], out=out[i])
        for j in (1, 2):
            np.multiply(planes[j], m[i, j], out=tmp)
            out[i] += tmp
    return out


def _lab_chunk(rgb: np.ndarray, out: np.ndarray) -> None:
    """Lab of n×3 sRGB values (clipped to [0, 1]) into out (n×3 float32)."""
    x = np.ascontiguousarray(rgb.T, dtype=np.float32)  # 3×n planes
    if rgb.dtype == np.uint8:
        x *= _F32(1.0 / 255.0)
    np.clip(x, 0.0, 1.0, out=x)
    low = np.minimum(x, _F32(SRGB_KNEE))
    np.maximum(x, _F32(SRGB_KNEE), out=x)
    x += _F32(0.055)
    np.power(x, _F32(2.4), out=x)
    low *= _F32(1.0 / (12.92 * _K))
    x += low
    x -= _F32(_KNEE_VALUE / _K)
    f = _product(_XYZ, x)
    np.minimum(f, _F32(F_EPS), out=low)
    np.maximum(f, _F32(F_EPS), out=f)
    np.cbrt(f, out=f)
    low *= _F32(F_SLOPE)
    f += low
    f -= _F32(_F_SHIFT)
    lab = low  # reused: L = 116 f(Y), a = 500 (f(X) − f(Y)), b = 200 (f(Y) − f(Z))
    np.multiply(f[1], _F32(116.0), out=lab[0])
    np.subtract(f[0], f[1], out=lab[1])
    lab[1] *= _F32(500.0)
    np.subtract(f[1], f[2], out=lab[2])
    lab[2] *= _F32(200.0)
    out[...] = lab.T


def _by_chunks(x: np.ndarray, name: str, convert: Any, *args: Any) -> np.ndarray:
    """Apply a chunk converter (in: N×3, out: float32 N×3) to ...×3 values a cache-sized chunk at a time."""
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 channels last (...×3), got shape {x.shape}")
    flat = x.reshape(-1, 3)
    out = np.empty(flat.shape, dtype=np.float32)
    for s in range(0, len(flat), _CHUNK):
        convert(flat[s : s + _CHUNK], out[s : s + _CHUNK], *args)
    return out.reshape(x.shape)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ...×3 (float in [0, 1], clipped, or uint8 0..255) → CIE Lab ...×3 float32 (L 0..100, a and b)."""
    return _by_chunks(rgb, "rgb", _lab_chunk)


def _f_inverse(f: np.ndarray) -> np.ndarray:
    """Inverse of CIE f (cube above 6/29, linear below), branch-free; overwrites f."""
    low = np.minimum(f, _F32(_F_KNEE))
    np.maximum(f, _F32(_F_KNEE), out=f)
    cube = f * f
    cube *= f
    low -= _F32(_F_KNEE)
    low *= _F32(1.0 / F_SLOPE)
    cube += low
    return cube


def _f_planes(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE f of X, Y, Z (3×n) of Lab planes: f(Y) = (L + 16)/116, f(X) = f(Y) + a/500, f(Z) = f(Y) - b/200."""
    f = np.empty((3, len(L)), dtype=np.float32)
    np.add(L, _F32(16.0), out=f[1])
    f[1] *= _F32(1.0 / 116.0)
    np.multiply(a, _F32(1.0 / 500.0), out=f[0])
    f[0] += f[1]
    np.multiply(b, _F32(-1.0 / 200.0), out=f[2])
    f[2] += f[1]
    return f


def _outside(lin: np.ndarray, eps: float) -> np.ndarray:
    """Per pixel of 3×n linear RGB: True where a channel leaves [−eps, 1 + eps]."""
    out = (lin < -eps) | (lin > 1.0 + eps)
    return out[0] | out[1] | out[2]


def _chroma_scale(L: np.ndarray, a: np.ndarray, b: np.ndarray, eps: float, steps: int) -> np.ndarray:
    """Largest factor in [0, 1] (by bisection) that brings each colour's chroma into the gamut."""
    f = _f_planes(L, a, b)
    fy, da, db = f[1], f[0] - f[1], f[2] - f[1]  # f(X) and f(Z) move linearly with the factor
    y = _f_inverse(fy.copy())  # Y does not depend on the chroma
    lo = np.zeros(len(L), dtype=np.float32)
    hi = np.ones(len(L), dtype=np.float32)
    for _ in range(steps):
        mid = _F32(0.5) * (lo + hi)
        x, z = _f_inverse(fy + mid * da), _f_inverse(fy + mid * db)
        ok = np.ones(len(L), dtype=bool)
        for row in _RGB:
            lin = row[0] * x + row[1] * y + row[2] * z
            ok &= (lin >= -eps) & (lin <= 1.0 + eps)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo


def _rgb_chunk(lab: np.ndarray, out: np.ndarray, eps: float, steps: int) -> None:
    """sRGB of n×3 Lab colours into out, out-of-gamut chroma reduced (L kept)."""
    p = np.ascontiguousarray(lab.T, dtype=np.float32)  # 3×n planes: L, a, b
    lin = _product(_RGB, _f_inverse(_f_planes(*p)))
    bad = _outside(lin, eps)
    if bad.any():
        L, a, b = p[:, bad]
        t = _chroma_scale(L, a, b, eps, steps)
        lin[:, bad] = _product(_RGB, _f_inverse(_f_planes(L, a * t, b * t)))
    np.clip(lin, 0.0, 1.0, out=lin)
    # sRGB curve: 1.055·max(v, knee)^(1/2.4) − 0.055 + 12.92·(min(v, knee) − knee)
    low = np.minimum(lin, _F32(_LIN_KNEE))
    np.maximum(lin, _F32(_LIN_KNEE), out=lin)
    np.power(lin, _F32(1.0 / 2.4), out=lin)
    lin *= _F32(1.055)
    lin -= _F32(0.055 + SRGB_KNEE)
    low *= _F32(12.92)
    lin += low
    np.clip(lin, 0.0, 1.0, out=lin)  # the pieces meet to 3e-8: keep black at 0, not -2e-8
    out[...] = lin.T


def lab_to_rgb(lab: np.ndarray, eps: float = 1e-5, steps: int = 12) -> np.ndarray:
    """CIE Lab ...×3 → sRGB ...×3 float32 in [0, 1]; out-of-gamut colours lose chroma, never lightness.

    In gamut this is the plain inverse of `rgb_to_lab` (scikit-image's lab2rgb); outside, the chroma of
    the pixel is scaled down (bisection, `steps` halvings) until its linear RGB lies in [−eps, 1 + eps].
    """
    return _by_chunks(lab, "lab", _rgb_chunk, eps, steps)
