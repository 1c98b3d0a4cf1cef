"""The deployable colour runtime: sRGB <-> CIE Lab, gamut fit, enhancer, annealed mean and an ONNX model.

One file that needs only numpy and Pillow (and onnxruntime to run a model) and imports nothing of the
colorization package: the package's Lab and ONNX path use it, and `python -m colorization.export --bundle`
copies it verbatim into a deploy bundle, so a deployed model colorizes with the code that was tested.

Lab is D65, 2°, float32 throughout (no float64 round trips). sRGB → Lab: undo the sRGB curve (a 256-entry
table for 8-bit input), multiply by the sRGB → XYZ matrix over the white, CIE f (cube root above F_EPS,
F_SLOPE·t + 16/116 below), L = 116 f(Y) − 16, a = 500 (f(X) − f(Y)), b = 200 (f(Y) − f(Z)). Both curves
are branch-free: a two-piece curve is its power piece at max(t, knee) plus its linear piece at
min(t, knee), less the value both share at the knee. numpy's SIMD cbrt and power beat an interpolated
table (measured: 1 ms against 20 ms for 2.4 M values), so only the exact 8-bit table is used.
Lab → sRGB fits the gamut instead of clipping: an out-of-gamut colour's chroma is scaled by the largest
factor in [0, 1] keeping its linear RGB in [−eps, 1 + eps] (bisection, then one linear step on the
bracket), so L is kept. Work is done on cache-sized chunks of three planes, over a few threads (numpy
releases the GIL), with the 3×3 products written as multiply-adds (BLAS threads stall on such products).

    python runtime.py photo.jpg out.png [--model model.onnx] [--temperature 0.38] [--enhance .8 .2 2 4]
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0
"""Networks see L_n = (L - L_CENT) / L_NORM and ab_n = ab / AB_NORM: the constants of Zhang et al.'s code."""
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
"""Linear sRGB → CIE XYZ, the matrix of Kornia's rgb_to_lab and scikit-image's rgb2lab."""
D65_WHITE = (0.95047, 1.0, 1.08883)
SRGB_KNEE = 0.04045  # sRGB values up to this are linear (t / 12.92), above it a power 2.4 curve
F_EPS, F_SLOPE = 0.008856, 7.787  # CIE f(t) is F_SLOPE·t + 16/116 at and below F_EPS, the cube root above
DEFAULT_SIZE = 256  # network input size when the model does not say

_F32 = np.float32
_CHUNK = 1 << 16  # pixels per pass: 256 KiB a plane, in cache
_THREADS = max(1, min(4, os.cpu_count() or 1))
_LIN_KNEE = SRGB_KNEE / 12.92
_F_KNEE = 6.0 / 29.0  # f at F_EPS
_F_SHIFT = 16.0 / 116.0 + F_SLOPE * F_EPS  # f(t) = max(t, eps)^(1/3) + F_SLOPE·min(t, eps) − this + 16/116
_XYZ = (np.array(XYZ_FROM_RGB) / np.array(D65_WHITE)[:, None]).astype(np.float32)  # → XYZ / white
_RGB = (np.linalg.inv(np.array(XYZ_FROM_RGB)) * np.array(D65_WHITE)[None, :]).astype(np.float32)
_u8 = np.arange(256) / 255.0
_LINEAR_8 = np.where(_u8 <= SRGB_KNEE, _u8 / 12.92, ((_u8 + 0.055) / 1.055) ** 2.4).astype(np.float32)


_FULL: dict[float, np.ndarray] = {}


def _full(value: float, like: np.ndarray) -> np.ndarray:
    """A constant float32 array broadcastable to `like` (its last axis, at most _CHUNK long): numpy's
    minimum and maximum run about 4× faster against an array than against a scalar."""
    n = like.shape[-1]
    row = _FULL.get(value)
    if row is None or len(row) < n:
        row = _FULL[value] = np.full(max(n, _CHUNK), value, dtype=np.float32)
    return row[:n]


def set_threads(n: int | None) -> None:
    """Threads for the colour work (None or 0: up to 4, the cores here); a model's threads are its own."""
    global _THREADS
    _THREADS = max(1, int(n or min(4, os.cpu_count() or 1)))


def _linear(x: np.ndarray) -> np.ndarray:
    """sRGB values (uint8, or float clipped to [0, 1]) → linear light, float32, same shape."""
    if x.dtype == np.uint8:
        return np.take(_LINEAR_8, x)
    x = np.clip(x, 0.0, 1.0, dtype=np.float32)
    low = np.minimum(x, _full(SRGB_KNEE, x))
    np.maximum(x, _full(SRGB_KNEE, x), out=x)
    x += _F32(0.055)
    x *= _F32(1 / 1.055)
    np.power(x, _F32(2.4), out=x)
    low *= _F32(1 / 12.92)
    x += low
    x -= _F32(_LIN_KNEE)  # both pieces at the knee (equal to 3e-9)
    return x


def _f(t: np.ndarray) -> np.ndarray:
    """CIE f(t) (cube root above F_EPS, F_SLOPE·t + 16/116 below), branch-free; overwrites t."""
    low = np.minimum(t, _full(F_EPS, t))
    np.maximum(t, _full(F_EPS, t), out=t)
    np.cbrt(t, out=t)
    low *= _F32(F_SLOPE)
    t += low
    t -= _F32(_F_SHIFT - 16.0 / 116.0)
    return t


def _product(m: np.ndarray, planes: Any) -> np.ndarray:
    """m @ planes for a 3×3 float32 matrix and three planes of n values, as multiply-adds (no BLAS)."""
    out = np.empty((3, len(planes[0])), dtype=np.float32)
    tmp = np.empty_like(out[0])
    for i in range(3):
        np.multiply(planes[0], m[i, 0], out=out[i])
        for j in (1, 2):
            np.multiply(planes[j], m[i, j], out=tmp)
            out[i] += tmp
    return out


def _chunked(n: int, work: Any) -> None:
    """Run work(start, stop) over [0, n) in cache-sized chunks, on the colour threads."""
    spans = [(s, min(n, s + _CHUNK)) for s in range(0, n, _CHUNK)]
    if _THREADS == 1 or len(spans) < 4:
        for s, e in spans:
            work(s, e)
        return
    with ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(lambda span: work(*span), spans))


def _channels(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 channels last (...×3), got shape {x.shape}")
    return x.reshape(-1, 3)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L (0..100, float32, shape ...) of sRGB ...×3 (uint8, or float in [0, 1]): the colorizer's input."""
    flat = _channels(rgb, "rgb")
    out = np.empty(len(flat), dtype=np.float32)
    w = _XYZ[1]

    def work(s: int, e: int) -> None:
        lin = _linear(np.ascontiguousarray(flat[s:e].T))  # 3×n planes
        y = lin[0] * w[0]
        y += lin[1] * w[1]
        y += lin[2] * w[2]
        out[s:e] = _f(y) * _F32(116.0) - _F32(16.0)

    _chunked(len(flat), work)
    return out.reshape(np.shape(rgb)[:-1])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ...×3 (float in [0, 1], clipped, or uint8 0..255) → CIE Lab ...×3 float32 (L 0..100, a and b)."""
    flat = _channels(rgb, "rgb")
    out = np.empty(flat.shape, dtype=np.float32)

    def work(s: int, e: int) -> None:
        f = _f(_product(_XYZ, _linear(np.ascontiguousarray(flat[s:e].T))))
        out[s:e, 0] = f[1] * _F32(116.0) - _F32(16.0)
        out[s:e, 1] = (f[0] - f[1]) * _F32(500.0)
        out[s:e, 2] = (f[1] - f[2]) * _F32(200.0)

    _chunked(len(flat), work)
    return out.reshape(np.shape(rgb))


def _f_inverse(f: np.ndarray) -> np.ndarray:
    """Inverse of CIE f (cube above 6/29, linear below), branch-free; overwrites f."""
    if f.size and f.min() >= _F32(_F_KNEE):  # the common case (L > 8, modest chroma): the cube alone
        cube = f * f
        cube *= f
        return cube
    low = np.minimum(f, _full(_F_KNEE, f))
    np.maximum(f, _full(_F_KNEE, f), out=f)
    cube = f * f
    cube *= f
    low -= _F32(_F_KNEE)
    low *= _F32(1.0 / F_SLOPE)
    cube += low
    return cube


def _linear_rgb(L: np.ndarray, a: np.ndarray, b: np.ndarray, t: Any = 1.0, y: Any = None) -> np.ndarray:
    """Linear RGB (3×n, not clipped) of Lab planes with the chroma scaled by t (`y`: Y, when known)."""
    fy = (L + _F32(16.0)) * _F32(1.0 / 116.0)
    x = _f_inverse(fy + a * (t * _F32(1.0 / 500.0)))
    z = _f_inverse(fy - b * (t * _F32(1.0 / 200.0)))
    return _product(_RGB, (x, _f_inverse(fy) if y is None else y, z))


def _chroma_scale(L: np.ndarray, a: np.ndarray, b: np.ndarray, eps: float, steps: int) -> np.ndarray:
    """Largest factor in [0, 1] bringing each colour's chroma into the gamut: `steps` halvings of the
    bracket, then the first constraint's crossing on its chord (the channels are smooth on the bracket)."""
    lo, hi = np.zeros(len(L), np.float32), np.ones(len(L), np.float32)
    top = _F32(1.0 + eps)
    y = _f_inverse((L + _F32(16.0)) * _F32(1.0 / 116.0))  # Y does not depend on the chroma
    for _ in range(steps):
        mid = _F32(0.5) * (lo + hi)
        c = _linear_rgb(L, a, b, mid, y)
        ok = ((c >= -eps) & (c <= top)).all(axis=0)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    c_lo, c_hi = _linear_rgb(L, a, b, lo, y), _linear_rgb(L, a, b, hi, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(c_hi > top, (top - c_lo) / (c_hi - c_lo), 1.0)
        down = np.where(c_hi < -eps, (c_lo + eps) / (c_lo - c_hi), 1.0)
    frac = np.clip(np.minimum(up, down).min(axis=0), 0.0, 1.0)
    return lo + (hi - lo) * np.nan_to_num(frac).astype(np.float32)


def _srgb(lin: np.ndarray) -> np.ndarray:
    """Linear RGB → sRGB in [0, 1] (clipped), branch-free; overwrites lin."""
    np.clip(lin, 0.0, 1.0, out=lin)
    if lin.size and lin.min() >= _F32(_LIN_KNEE):  # no dark values: the power piece alone
        np.power(lin, _F32(1.0 / 2.4), out=lin)
        lin *= _F32(1.055)
        lin -= _F32(0.055)
        return np.clip(lin, 0.0, 1.0, out=lin)
    low = np.minimum(lin, _full(_LIN_KNEE, lin))
    np.maximum(lin, _full(_LIN_KNEE, lin), out=lin)
    np.power(lin, _F32(1.0 / 2.4), out=lin)
    lin *= _F32(1.055)
    lin -= _F32(0.055 + SRGB_KNEE)
    low *= _F32(12.92)
    lin += low
    return np.clip(lin, 0.0, 1.0, out=lin)  # the pieces meet to 3e-8: black stays 0


def lab_planes_to_rgb(
    L: np.ndarray, a: np.ndarray, b: np.ndarray, eps: float = 1e-5, steps: int = 6
) -> np.ndarray:
    """CIE Lab as three planes (any equal shapes) → sRGB shape×3 float32 in [0, 1], with the gamut fit."""
    shape = np.shape(L)
    planes = [np.ascontiguousarray(p, dtype=np.float32).reshape(-1) for p in (L, a, b)]
    out = np.empty((planes[0].size, 3), dtype=np.float32)

    def work(s: int, e: int) -> None:
        Lc, ac, bc = (p[s:e] for p in planes)
        lin = _linear_rgb(Lc, ac, bc)
        top = _F32(1.0 + eps)
        bad = ((lin < -eps) | (lin > top)).any(axis=0)
        if bad.any():
            t = _chroma_scale(Lc[bad], ac[bad], bc[bad], eps, steps)
            lin[:, bad] = _linear_rgb(Lc[bad], ac[bad] * t, bc[bad] * t)
        out[s:e] = _srgb(lin).T

    _chunked(len(out), work)
    return out.reshape(*shape, 3)


def lab_to_rgb(lab: np.ndarray, eps: float = 1e-5, steps: int = 6) -> np.ndarray:
    """CIE Lab ...×3 → sRGB ...×3 float32 in [0, 1]; out-of-gamut colours lose chroma, never lightness."""
    flat = _channels(lab, "lab")
    return lab_planes_to_rgb(flat[:, 0], flat[:, 1], flat[:, 2], eps, steps).reshape(np.shape(lab))


def enhance_saturation(
    rgb: np.ndarray, w: float = 0.8, c: float = 0.2, alpha: float = 2.0, beta: float = 4.0
) -> np.ndarray:
    """Raise weak HSV saturation s of sRGB ...×3 in [0, 1] to s·(1 + w·exp(−|β(s − c)|^α)), hue and value
    kept: each channel is v − (v − rgb)·s'/s (linear in s at fixed hue and value), float32, clipped."""
    x = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    if x.ndim == 0 or x.shape[-1] != 3:
        raise ValueError(f"rgb must have 3 channels last (...×3), got shape {x.shape}")
    v = x.max(axis=-1)
    s = v - x.min(axis=-1)
    np.divide(s, v, out=s, where=v > 0)
    s_new = np.clip(
        s * (_F32(1.0) + _F32(w) * np.exp(-(np.abs(_F32(beta) * (s - _F32(c))) ** _F32(alpha)))), 0, 1
    )
    ratio = np.ones_like(s)
    np.divide(s_new, s, out=ratio, where=s > 0)
    return np.clip(v[..., None] - (v[..., None] - x) * ratio[..., None], 0.0, 1.0)


def resize_planes(x: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize each plane of a float C×H×W array to (h, w), bilinear (PIL mode F: antialiased when shrinking,
    torch's bilinear with align_corners=False when enlarging)."""
    h, w = size_hw
    if x.shape[1:] == (h, w):
        return x.astype(np.float32, copy=True)
    out = np.empty((x.shape[0], h, w), dtype=np.float32)
    for i, ch in enumerate(x):
        img = Image.fromarray(np.ascontiguousarray(ch, dtype=np.float32), "F")
        out[i] = np.asarray(img.resize((w, h), resample=Image.BILINEAR))
    return out


def annealed_mean(logits: np.ndarray, points: np.ndarray, temperature: float) -> np.ndarray:
    """ab (B×2×h×w, Lab units) from bin logits B×Q×h×w: the mean of softmax(log_softmax(z)/T) over the
    bins' ab points (Q×2); T = 1 is the predicted mean, T → 0 its mode (Zhang et al.'s 0.38)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float32) * _F32(
        1.0 / temperature
    )  # softmax(log_softmax(z)/T) = softmax(z/T)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return np.einsum("bqhw,qc->bchw", z, np.asarray(points, dtype=np.float32), optimize=True)


class Model:
    """An exported colorization model in ONNX Runtime: normalised L (1×1×h×w) in, ab (Lab units) out.

    Reads what export wrote in the metadata: objective, image_size, size_multiple, temperature, hints and,
    for a graph that returns bin logits, the bins' ab points and output stride (then the temperature is
    chosen per call). The session is tuned: all graph optimisations, `threads` intra-op threads,
    `inter_threads` across branches, no spinning of idle threads (numpy work follows each run).
    """

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        inter_threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
        if inter_threads:
            opts.inter_op_num_threads = int(inter_threads)
            opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=providers or ["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        m = self.meta
        self.objective = m.get("objective", "unknown")
        self.image_size = int(m["image_size"]) if m.get("image_size") else None
        self.size_multiple = int(m.get("size_multiple") or 1)
        self.temperature = float(m["temperature"]) if m.get("temperature") else None
        self.hints = len(self.inputs) > 1
        self.logits = self.output == "logits"
        self.points = np.asarray(json.loads(m["bins"]), np.float32) if self.logits else None
        self.stride = int(m.get("output_stride") or 1)

    def __call__(
        self, L_n: np.ndarray, hints: np.ndarray | None = None, temperature: float | None = None
    ) -> np.ndarray:
        """ab (Lab units, B×2×h×w) for normalised L B×1×h×w (and hint planes; zeros when the model takes
        them); `temperature` overrides the exported one for a logits graph."""
        x = np.ascontiguousarray(L_n, dtype=np.float32)
        feed = {self.inputs[0]: x}
        if self.hints:
            h = np.zeros((x.shape[0], 3, *x.shape[2:]), np.float32) if hints is None else hints
            feed[self.inputs[1]] = np.ascontiguousarray(h, dtype=np.float32)
        elif hints is not None:
            raise ValueError("this ONNX model takes no user hints")
        out = self.session.run(None, feed)[0]
        if not self.logits:
            return out
        t = temperature if temperature is not None else (self.temperature or 0.38)
        ab = annealed_mean(out, self.points, t)
        if ab.shape[2:] != x.shape[2:]:  # a net at a coarser stride: bilinear, as the torch decoder
            ab = np.stack([resize_planes(a, x.shape[2:]) for a in ab])
        return ab


def net_input(L: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Normalised L (1×1×h×w float32) for the network from a full-resolution L (H×W, Lab units)."""
    small = resize_planes(L[None], size_hw)
    small -= _F32(L_CENT)
    small *= _F32(1.0 / L_NORM)
    return small[None]


def compose(L: np.ndarray, ab: np.ndarray, enhance: Any = None) -> np.ndarray:
    """sRGB H×W×3 float32 of the full-resolution L and ab (2×H×W), gamut fitted; `enhance` (w, c, alpha,
    beta) raises weak saturation, then the input's L is put back: enhancement changes chroma only."""
    out = lab_planes_to_rgb(L, ab[0], ab[1])
    if enhance is not None:
        lab = rgb_to_lab(enhance_saturation(out, *enhance))
        out = lab_planes_to_rgb(L, lab[..., 1], lab[..., 2])
    return out


def colorize(
    model: Model,
    rgb: np.ndarray,
    size: int | None = None,
    temperature: float | None = None,
    enhance: Any = None,
) -> np.ndarray:
    """Colorize sRGB H×W×3 (uint8 or float; colour is reduced to its L) at full resolution → float32 sRGB:
    L resized to the network's size (squashed square), ab resized back and joined with the original L."""
    L = lightness(rgb)
    side = int(size or model.image_size or DEFAULT_SIZE)
    ab = model(net_input(L, (side, side)), temperature=temperature)[0]
    return compose(L, resize_planes(ab, L.shape), enhance)


def to_uint8(x: Any) -> np.ndarray:
    """Float values in [0, 1] (any shape, anything np.asarray takes) → uint8, clipped and rounded.

    The project's one 8-bit quantiser: colorization.imaging.values re-exports it for the package.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * x.dtype.type(255.0) + x.dtype.type(0.5)).astype(np.uint8)


def colorize_image(model: Model, image: Image.Image, **kwargs: Any) -> Image.Image:
    """Colorize a PIL image of any mode (EXIF orientation applied, alpha kept) → 8-bit RGB or RGBA image."""
    image = ImageOps.exif_transpose(image)
    alpha = image.getchannel("A") if "A" in image.getbands() else None
    out = Image.fromarray(to_uint8(colorize(model, np.asarray(image.convert("RGB")), **kwargs)), "RGB")
    if alpha is not None:
        out.putalpha(alpha)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python runtime.py INPUT OUTPUT`: colorize one image file with the model.onnx beside this file."""
    import argparse

    p = argparse.ArgumentParser(description="Colorize an image with an exported ONNX model.")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--model", default=str(Path(__file__).with_name("model.onnx")))
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean T (logits models)")
    p.add_argument("--size", type=int, default=None, help="network input size (default: the model's)")
    p.add_argument("--enhance", type=float, nargs=4, default=None, metavar=("W", "C", "ALPHA", "BETA"))
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    try:
        set_threads(args.threads)
        model = Model(args.model, threads=args.threads)
        with Image.open(args.input) as img:
            out = colorize_image(
                model, img, size=args.size, temperature=args.temperature, enhance=args.enhance
            )
        out.save(args.output)
    except (OSError, ValueError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
