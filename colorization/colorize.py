"""Colorize users' photos at full resolution, with a trained checkpoint or an exported ONNX model.

    python -m colorization.colorize INPUT... -o OUT (--ckpt PATH | --onnx model.onnx) [options]
    colorize photos/ "scans/**/*.tif" -o out/ --ckpt last.ckpt --compare

How a photo is colorized: the input (any size, EXIF orientation applied) is converted to CIE Lab at
full resolution; its L is resized to the size the network was trained at (``--size`` overrides, default
256 when the checkpoint does not say), the network predicts ab there, ab is resized bilinearly back to
the original size and joined with the ORIGINAL full-resolution L. Pixels whose predicted chroma falls
outside the sRGB gamut have their chroma reduced (never their lightness), so the output's L equals the
input's L up to 8-bit quantisation.

Choices, documented:
- Aspect: by default the L image is squashed to size x size, as Zhang et al.'s demo does. That is the
  geometry the network was trained on (square crops), works for every net whatever its size_multiple,
  and ab is smooth enough that stretching it back costs nothing visible. ``--keep-aspect`` instead
  scales the short side to ``size`` and rounds the long side to the net's size_multiple (no padding,
  so no artificial borders enter the receptive field).
- Inputs: files, folders (searched recursively; the sub-folder structure is kept under OUT) and globs
  (``**`` allowed; quote them so the shell does not expand them first). Outputs are OUT/<stem>.png
  (or ``--format``); with a single input file and an OUT that ends in an image suffix, OUT is the file.
- Outputs are 8-bit; 16-bit and grayscale inputs are read at full precision. RGBA (and gray+alpha)
  keeps its alpha except in JPEG, where it is composited over white.
- ``--enhance W C ALPHA BETA`` applies the HSV saturation enhancer to the result, then puts the
  original L back, so enhancement changes chroma only.
- Exit status: 0 when at least one input was colorized (or every output already existed); 1 when
  nothing could be colorized (all inputs failed, no input found, or the model did not load);
  2 for a command-line usage error. Each failure is reported on one line and summarised at the end.
- The ONNX path (``--onnx``) imports onnxruntime, numpy, PIL and scikit-image only: never torch. So
  this module imports torch lazily, inside the checkpoint path, and colour conversion is done with
  numpy in float32 on both paths: scikit-image's rgb2lab, and for Lab → RGB the gamut fit below, which
  equals scikit-image's lab2rgb in gamut (both agree with Kornia's conversion used for training).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from skimage import color as skcolor
from skimage.color import colorconv

from colorization.errors import ColorizationError
from colorization.imaging import L_CENT, L_NORM, decode, exif_upright, is_image_file, to_float

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEFAULT_SIZE = 256
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "tif": "TIFF"}
ONNX_HINT = 'pip install "colorization[onnx]"'

Backend = Callable[[np.ndarray], np.ndarray]


@dataclass
class ModelInfo:
    """What the colorizer needs to know about a model: how it was trained and what it predicts."""

    objective: str = "unknown"
    image_size: int | None = None
    size_multiple: int = 1
    temperature: float | None = None
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """Return the info as ONNX metadata_props strings (read back by `from_metadata`)."""
        meta = {
            "objective": self.objective,
            "image_size": "" if self.image_size is None else str(int(self.image_size)),
            "size_multiple": str(int(self.size_multiple)),
            "temperature": "" if self.temperature is None else repr(float(self.temperature)),
            "input": "L_n = (L - 50) / 100, float32 Bx1xHxW",
            "output": "ab in CIE Lab units, float32 Bx2xHxW, same H and W as the input",
        }
        meta.update(self.extra)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "") -> ModelInfo:
        """Rebuild the info from ONNX metadata_props written by `to_metadata`."""
        size = meta.get("image_size", "")
        temp = meta.get("temperature", "")
        return cls(
            objective=meta.get("objective", "unknown"),
            image_size=int(size) if size else None,
            size_multiple=int(meta.get("size_multiple", "1") or 1),
            temperature=float(temp) if temp else None,
            source=source,
        )


# --------------------------------------------------------------------------- image input / output


def require(package: str) -> Any:
    """Import onnx / onnxruntime, or raise a one-line ColorizationError saying how to install them."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ColorizationError(f"{package} is not installed: {ONNX_HINT}") from None


def split_array(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split an H×W, H×W×1/2/3/4 image array into float32 RGB H×W×3 in [0,1] and alpha H×W (or None)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        g = to_float(arr)
        return np.repeat(g[..., None], 3, axis=2), None
    if arr.ndim != 3 or arr.shape[2] not in (2, 3, 4):
        raise ValueError(f"expected an H×W, H×W×3 or H×W×4 image, got shape {tuple(arr.shape)}")
    if min(arr.shape[:2]) < 1:
        raise ValueError(f"empty image of shape {tuple(arr.shape)}")
    f = to_float(arr)
    if arr.shape[2] == 2:
        return np.repeat(f[..., :1], 3, axis=2), f[..., 1]
    if arr.shape[2] == 4:
        return np.ascontiguousarray(f[..., :3]), f[..., 3]
    return f, None


def split_pil(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Split a PIL image of any mode into float32 RGB H×W×3 in [0,1] and alpha H×W (or None)."""
    rgb, alpha = decode(image)
    return to_float(rgb), None if alpha is None else to_float(alpha)


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image file (EXIF orientation applied, 16-bit kept) as float32 RGB H×W×3 and alpha or None."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        try:  # Pillow reads 16-bit RGB TIFF as 8-bit: use tifffile when it is there
            import tifffile

            arr = tifffile.imread(path)
            if arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] in (3, 4):
                return split_array(arr)
        except Exception:  # noqa: BLE001 - fall back to Pillow, which gives the clearer error
            pass
    try:
        with Image.open(path) as im:
            im = exif_upright(im)
            im.load()
            return split_pil(im)
    except Image.DecompressionBombError as e:  # a header that declares billions of pixels: never decoded
        raise ColorizationError(f"cannot read image: too large ({str(e).split('pixels')[0]}pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ColorizationError(f"cannot read image: {first}") from None


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Quantise float values in [0,1] to uint8 with rounding."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """Make an 8-bit RGB or RGBA PIL image from float RGB H×W×3 and optional alpha H×W."""
    if alpha is None:
        return Image.fromarray(to_uint8(rgb), "RGB")
    return Image.fromarray(to_uint8(np.concatenate([rgb, alpha[..., None]], axis=2)), "RGBA")


def _flatten(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite RGB over white using alpha (for formats and views without transparency)."""
    if alpha is None:
        return rgb
    a = alpha[..., None]
    return rgb * a + (1.0 - a)


# --------------------------------------------------------------------------- colour helpers (numpy)


def rgb_to_lab_np(rgb: np.ndarray) -> np.ndarray:
    """sRGB float H×W×3 in [0,1] → CIE Lab (D65) float32, with scikit-image (no torch on this path)."""
    return skcolor.rgb2lab(rgb.astype(np.float32, copy=False)).astype(np.float32, copy=False)


# The sRGB primaries and D65 white of scikit-image's rgb2lab, which Kornia (used in training) shares.
_D65_WHITE = colorconv.xyz_tristimulus_values(illuminant="D65", observer="2").astype(np.float32)
_RGB_FROM_XYZ = colorconv.rgb_from_xyz.astype(np.float32)


def _finv(f: np.ndarray) -> np.ndarray:
    """Inverse of CIE Lab's companding function f (cube above 6/29, linear below)."""
    delta = np.float32(6.0 / 29.0)
    return np.where(f > delta, f * f * f, np.float32(3.0 * (6.0 / 29.0) ** 2) * (f - np.float32(4.0 / 29.0)))


def _lab_to_linear_rgb(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE Lab planes → linear sRGB 3×N, NOT clipped: values outside [0, 1] mean out of gamut."""
    fy = (L + np.float32(16.0)) / np.float32(116.0)
    xyz = (
        _finv(fy + a / np.float32(500.0)) * _D65_WHITE[0],
        _finv(fy),
        _finv(fy - b / np.float32(200.0)) * _D65_WHITE[2],
    )
    m = _RGB_FROM_XYZ
    return np.stack([m[i, 0] * xyz[0] + m[i, 1] * xyz[1] + m[i, 2] * xyz[2] for i in range(3)])


def _in_gamut(lin: np.ndarray, eps: float) -> np.ndarray:
    """True where all three linear RGB values lie in [-eps, 1 + eps]."""
    return ((lin >= -eps) & (lin <= 1.0 + eps)).all(axis=0)


def fit_to_gamut(lab: np.ndarray, eps: float = 1e-5, steps: int = 12) -> np.ndarray:
    """Return sRGB for Lab H×W×3, shrinking the chroma of out-of-gamut pixels (never L) so lightness is kept.

    Plain clipping of an out-of-gamut colour changes its lightness; here each such pixel's ab is scaled
    by the largest factor in [0, 1] (bisection, 2^-steps precise) that keeps its linear RGB in [0, 1].
    """
    lab = np.asarray(lab, dtype=np.float32)
    L, a, b = (np.ascontiguousarray(lab[..., i]).ravel() for i in range(3))
    lin = _lab_to_linear_rgb(L, a, b)
    bad = ~_in_gamut(lin, eps)
    if bad.any():
        Lb, ab_, bb = L[bad], a[bad], b[bad]
        lo = np.zeros(len(Lb), dtype=np.float32)  # scale 0 (gray) is always in gamut
        hi = np.ones(len(Lb), dtype=np.float32)
        for _ in range(steps):
            mid = np.float32(0.5) * (lo + hi)
            ok = _in_gamut(_lab_to_linear_rgb(Lb, ab_ * mid, bb * mid), eps)
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        lin[:, bad] = _lab_to_linear_rgb(Lb, ab_ * lo, bb * lo)
    np.clip(lin, 0.0, 1.0, out=lin)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, np.float32(1 / 2.4)) - 0.055)
    return np.ascontiguousarray(srgb.T.reshape(lab.shape), dtype=np.float32)


def enhance_saturation_np(
    rgb: np.ndarray, w: float = 0.8, c: float = 0.2, alpha: float = 2.0, beta: float = 4.0
) -> np.ndarray:
    """Numpy twin of colorization.color.enhance_saturation (HSV: s' = s(1 + w·exp(-|β(s-c)|^α))).

    Kept here because the ONNX path must not import torch; tests check it against the torch version.
    """
    hsv = skcolor.rgb2hsv(rgb.astype(np.float32, copy=False))
    s = hsv[..., 1]
    hsv[..., 1] = np.clip(s * (1.0 + w * np.exp(-(np.abs(beta * (s - c)) ** alpha))), 0.0, 1.0)
    return skcolor.hsv2rgb(hsv).astype(np.float32, copy=False)


def _resize_channels(x: np.ndarray, size_hw: tuple[int, int], resample: int) -> np.ndarray:
    """Resize each channel of a float C×H×W array to size_hw with PIL (mode F, antialiased)."""
    h, w = size_hw
    if x.shape[1:] == (h, w):
        return x.astype(np.float32, copy=True)
    out = np.empty((x.shape[0], h, w), dtype=np.float32)
    for i, ch in enumerate(x):
        out[i] = np.asarray(
            Image.fromarray(np.ascontiguousarray(ch, dtype=np.float32), "F").resize((w, h), resample=resample)
        )
    return out


# --------------------------------------------------------------------------- backends


def _objective_name(module: Any) -> str:
    """Name the objective of a LightningModule from its class: RegressionModule → 'regression'."""
    name = type(module).__name__
    return name[: -len("Module")].lower() if name.endswith("Module") and name != "Module" else name.lower()


def _size_multiple(*modules: Any) -> int:
    """The largest `size_multiple` attribute found on the modules or any sub-module (1 if none)."""
    best = 1
    for m in modules:
        subs = m.modules() if hasattr(m, "modules") else [m]
        for sub in subs:
            v = getattr(sub, "size_multiple", None)
            if isinstance(v, int) and v > best:
                best = v
    return best


def trained_size(path: str | Path) -> int | None:
    """The image size the model was trained at: the DataModule's hparams Lightning saves in the checkpoint.

    ``LabDataModule`` calls ``save_hyperparameters()``, so every checkpoint that ``trainer.fit`` writes
    holds ``checkpoint["datamodule_hyper_parameters"]["image_size"]``; None when it is not there.
    """
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        size = ckpt["datamodule_hyper_parameters"]["image_size"]
    except Exception:  # noqa: BLE001 - the size is optional information (None: --size or the default)
        return None
    return int(size) if isinstance(size, int) and size > 0 else None


def torch_device(device: str) -> torch.device:
    """Check a --device string against this machine: a one-line ColorizationError instead of a traceback."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ColorizationError(f"--device {device!r} is not a device (use cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ColorizationError(f"--device {device}: no CUDA GPU is available here (use --device cpu)")
        if dev.index is not None and dev.index >= count:
            raise ColorizationError(f"--device {device}: this machine has {count} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ColorizationError(f"--device {device}: MPS is not available here (use --device cpu)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ColorizationError(f"--device {device} is not supported (use cpu, cuda, cuda:N or mps)")
    return dev


def load_model(
    ckpt: str | Path, temperature: float | None = None, device: str = "cpu"
) -> tuple[torch.nn.Module, ModelInfo]:
    """Load a checkpoint's inference model (L_n → ab in Lab units) and what is known about it."""
    path = Path(ckpt)
    if not path.is_file():
        raise ColorizationError(f"checkpoint not found: {path}")
    dev = torch_device(device)
    from colorization.objectives import load_checkpoint

    module = load_checkpoint(str(path), map_location=dev)
    objective = _objective_name(module)
    hp = dict(getattr(module, "hparams", {}) or {})
    if temperature is not None:
        if objective != "classification":
            raise ColorizationError(
                f"--temperature applies to classification models only; this one is {objective}"
            )
        if not temperature > 0:
            raise ColorizationError(f"--temperature must be > 0, got {temperature}")
    model = module.inference_model(temperature=temperature).to(dev).eval()
    t_used = getattr(model, "temperature", None) if objective == "classification" else None
    if objective == "classification" and t_used is None:
        t_used = temperature if temperature is not None else hp.get("temperature")
    info = ModelInfo(
        objective=objective,
        image_size=trained_size(path),
        size_multiple=_size_multiple(module, model),
        temperature=t_used,
        source=str(path),
    )
    return model, info


class TorchBackend:
    """Run a torch module (L_n B×1×h×w → ab B×2×h×w) on numpy arrays, without autograd."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch_device(device)
        self.model = model.to(self.device).eval()

    def __call__(self, L_n: np.ndarray) -> np.ndarray:
        """Predict ab (Lab units) for normalised L."""
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(L_n, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()


class OnnxBackend:
    """Run an exported ONNX model with onnxruntime (no torch), reading its metadata."""

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise ColorizationError(f"ONNX model not found: {path}")
        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One run per image, then numpy work: idle ORT threads must not spin and steal those cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ColorizationError("--device cuda asked, but this onnxruntime has no CUDA provider")
            providers.insert(0, "CUDAExecutionProvider")
        elif device != "cpu":
            raise ColorizationError(f"--device {device} is not supported with --onnx (use cpu or cuda)")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own error types
            raise ColorizationError(f"cannot load ONNX model {path}: {str(e).splitlines()[0]}") from None
        self.input_name = self.session.get_inputs()[0].name
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.info = ModelInfo.from_metadata(meta, source=str(path))

    def __call__(self, L_n: np.ndarray) -> np.ndarray:
        """Predict ab (Lab units) for normalised L."""
        x = np.ascontiguousarray(L_n, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


# --------------------------------------------------------------------------- the colorizer


class Colorizer:
    """Load a model once, then colorize PIL images, arrays or files at their full resolution."""

    def __init__(
        self,
        backend: Backend,
        info: ModelInfo | None = None,
        *,
        size: int | None = None,
        keep_aspect: bool = False,
        enhance: Sequence[float] | None = None,
    ) -> None:
        if size is not None and size < 1:
            raise ColorizationError(f"--size must be a positive number of pixels, got {size}")
        self.backend = backend
        self.info = info or ModelInfo()
        self.size = int(size or self.info.image_size or DEFAULT_SIZE)
        self.size_multiple = max(1, int(self.info.size_multiple))
        if not keep_aspect and self.size % self.size_multiple:
            raise ColorizationError(
                f"size {self.size} is not a multiple of the network's size_multiple {self.size_multiple}; "
                f"use --size {max(1, round(self.size / self.size_multiple)) * self.size_multiple}"
            )
        self.keep_aspect = keep_aspect
        if enhance is not None and len(enhance) != 4:
            raise ValueError("enhance takes four numbers: w c alpha beta")
        self.enhance = tuple(float(v) for v in enhance) if enhance is not None else None

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: str | Path,
        *,
        temperature: float | None = None,
        device: str = "cpu",
        threads: int | None = None,
        **kwargs: Any,
    ) -> Colorizer:
        """Colorizer for a Lightning checkpoint (torch path)."""
        model, info = load_model(ckpt, temperature=temperature, device=device)
        return cls(TorchBackend(model, device, threads), info, **kwargs)

    @classmethod
    def from_onnx(
        cls,
        path: str | Path,
        *,
        temperature: float | None = None,
        device: str = "cpu",
        threads: int | None = None,
        **kwargs: Any,
    ) -> Colorizer:
        """Colorizer for an exported ONNX model (onnxruntime path, no torch)."""
        backend = OnnxBackend(path, device, threads)
        t = backend.info.temperature
        if temperature is not None and (t is None or abs(temperature - t) > 1e-9):
            fixed = "has no temperature" if t is None else f"was exported at T={t:g}"
            raise ColorizationError(
                f"this ONNX model {fixed}; the temperature is fixed at export "
                f"(python -m colorization.export --temperature ...)"
            )
        return cls(backend, backend.info, **kwargs)

    @classmethod
    def from_module(
        cls, model: torch.nn.Module, *, device: str = "cpu", info: ModelInfo | None = None, **kwargs: Any
    ) -> Colorizer:
        """Colorizer for any torch module mapping L_n B×1×H×W to ab (Lab units) B×2×H×W."""
        info = info or ModelInfo(size_multiple=_size_multiple(model))
        return cls(TorchBackend(model, device), info, **kwargs)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Colorizer:
        """Colorizer for a .onnx file or a checkpoint, chosen by the suffix."""
        if Path(path).suffix.lower() == ".onnx":
            return cls.from_onnx(path, **kwargs)
        return cls.from_checkpoint(path, **kwargs)

    def net_size(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) the network sees for an input of the given size."""
        if not self.keep_aspect:
            return self.size, self.size
        m = self.size_multiple
        scale = self.size / min(height, width)

        def side(n: int) -> int:
            return max(m, int(round(n * scale / m)) * m)

        return side(height), side(width)

    def predict_ab(self, L: np.ndarray) -> np.ndarray:
        """ab (Lab units, 2×H×W float32) for a full-resolution L (H×W, Lab units), via the net's size."""
        H, W = L.shape
        h, w = self.net_size(H, W)
        small = _resize_channels(L[None].astype(np.float32), (h, w), Image.BILINEAR)
        L_n = ((small - L_CENT) / L_NORM)[None]  # 1×1×h×w
        ab = np.asarray(self.backend(L_n), dtype=np.float32)
        if ab.ndim != 4 or ab.shape[:2] != (1, 2):
            raise ColorizationError(f"the model returned shape {tuple(ab.shape)}, expected 1×2×{h}×{w}")
        return _resize_channels(ab[0], (H, W), Image.BILINEAR)

    def colorize_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """Colorize float RGB H×W×3 in [0,1] (colour is reduced to its L) → float32 RGB H×W×3 in [0,1]."""
        lab = rgb_to_lab_np(rgb)
        L = lab[..., 0].copy()
        ab = self.predict_ab(L)
        lab[..., 1] = ab[0]
        lab[..., 2] = ab[1]
        out = fit_to_gamut(lab)
        if self.enhance is not None:
            out = enhance_saturation_np(out, *self.enhance)
            lab2 = rgb_to_lab_np(out)
            lab2[..., 0] = L  # chroma only: the lightness stays the input's
            out = fit_to_gamut(lab2)
        return out

    def colorize(self, image: Image.Image | np.ndarray | str | Path) -> Image.Image | np.ndarray:
        """Colorize a PIL image (→ RGB/RGBA PIL), an array (→ same dtype and channels) or a file (→ PIL)."""
        if isinstance(image, (str, Path)):
            rgb, alpha = read_image(image)
            return to_pil(self.colorize_rgb(rgb), alpha)
        if isinstance(image, Image.Image):
            rgb, alpha = split_pil(image)
            return to_pil(self.colorize_rgb(rgb), alpha)
        arr = np.asarray(image)
        rgb, alpha = split_array(arr)
        out = self.colorize_rgb(rgb)
        if alpha is not None:
            out = np.concatenate([out, alpha[..., None]], axis=2)
        if arr.dtype == np.uint8:
            return to_uint8(out)
        if arr.dtype == np.uint16:
            return (np.clip(out, 0, 1) * 65535.0 + 0.5).astype(np.uint16)
        return out


# --------------------------------------------------------------------------- files and the CLI


def _has_magic(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def collect_inputs(specs: Iterable[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders (recursive) and globs into (file, relative output stem) pairs, plus problems."""
    found: list[tuple[Path, Path]] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(p: Path, rel: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            found.append((p, rel))

    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
            if not files:
                problems.append(f"{spec}: no images found in folder")
            for f in files:
                add(f, f.relative_to(p).with_suffix(""))
        elif p.is_file():
            add(p, Path(p.stem))
        elif _has_magic(spec):
            files = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
            if not files:
                problems.append(f"{spec}: no file matches")
            for f in files:
                add(f, Path(f.stem))
        else:
            problems.append(f"{spec}: no such file or folder")
    return found, problems


def _save(image: Image.Image, path: Path, fmt: str) -> None:
    """Save with sensible per-format options (JPEG has no alpha: composite over white)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG":
        if image.mode == "RGBA":
            rgb = np.asarray(image, dtype=np.float32) / 255.0
            image = to_pil(_flatten(rgb[..., :3], rgb[..., 3]))
        image.save(path, fmt, quality=95)
    elif fmt == "WEBP":
        image.save(path, fmt, quality=95)
    else:
        image.save(path, fmt)


def build_parser() -> argparse.ArgumentParser:
    """The colorize command's argument parser."""
    p = argparse.ArgumentParser(
        prog="colorize",
        description="Colorize photos at full resolution with a trained checkpoint or an ONNX model.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or globs")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (or output file when there is one input and OUT has an image suffix)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", metavar="PATH", help="Lightning checkpoint (PyTorch path)")
    src.add_argument("--onnx", metavar="PATH", help="exported ONNX model (onnxruntime only, no torch)")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help=f"network input size (default: the trained size, else {DEFAULT_SIZE})",
    )
    p.add_argument(
        "--keep-aspect",
        action="store_true",
        help="scale the short side to SIZE and keep the aspect ratio instead of squashing",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="annealed-mean temperature T (classification checkpoints; fixed at export for ONNX)",
    )
    p.add_argument(
        "--enhance",
        type=float,
        nargs=4,
        metavar=("W", "C", "ALPHA", "BETA"),
        default=None,
        help="apply the saturation enhancer, e.g. --enhance 0.8 0.2 2 4",
    )
    p.add_argument("--compare", action="store_true", help="also write OUT/<stem>_compare: input | result")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default=None,
        help="output format (default png, or OUT's suffix for a single output file)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    return p


def _plan_outputs(
    items: list[tuple[Path, Path]], out: Path, fmt_arg: str | None
) -> tuple[list[tuple[Path, Path, str]], list[str]]:
    """Decide each input's output path and format; report name collisions."""
    file_like = out.suffix.lower().lstrip(".") in FORMATS and not out.is_dir()
    if file_like and len(items) > 1:
        raise ColorizationError(f"{out} looks like a file but there are {len(items)} inputs: give a folder")
    single_file = file_like and len(items) == 1
    plans: list[tuple[Path, Path, str]] = []
    problems: list[str] = []
    taken: dict[Path, Path] = {}
    for src, rel in items:
        if single_file:
            ext = fmt_arg or out.suffix.lower().lstrip(".")
            dst = out if not fmt_arg else out.with_suffix("." + fmt_arg)
        else:
            ext = fmt_arg or "png"
            dst = out / rel.parent / (rel.name + "." + ext)
        if dst in taken:
            problems.append(f"{src}: skipped, its output {dst} is already the output of {taken[dst]}")
            continue
        taken[dst] = src
        plans.append((src, dst, FORMATS[ext]))
    return plans, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `colorize` / `python -m colorization.colorize`; returns the exit status."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    args = build_parser().parse_args(argv)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    enhance = args.enhance
    try:
        kwargs = dict(size=args.size, keep_aspect=args.keep_aspect, enhance=enhance)
        if args.onnx:
            colorizer = Colorizer.from_onnx(
                args.onnx, temperature=args.temperature, device=args.device, threads=args.threads, **kwargs
            )
        else:
            colorizer = Colorizer.from_checkpoint(
                args.ckpt, temperature=args.temperature, device=args.device, threads=args.threads, **kwargs
            )
    except (ColorizationError, ValueError, FileNotFoundError) as e:
        console.print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", markup=False)
        return 1

    items, problems = collect_inputs(args.inputs)
    try:
        plans, collisions = _plan_outputs(items, Path(args.output), args.format)
    except ColorizationError as e:
        console.print(f"error: {e}", markup=False)
        return 1
    failures = problems + collisions
    for msg in failures:
        console.print(f"skipped: {msg}", markup=False)
    done = skipped = 0
    with Progress(
        TextColumn("colorizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(plans))
        for src, dst, fmt in plans:
            progress.update(task, description=src.name)
            cmp_dst = dst.with_name(dst.stem + "_compare" + dst.suffix)
            if dst.exists() and not args.overwrite:
                skipped += 1
                progress.console.print(f"exists, not overwritten (use --overwrite): {dst}", markup=False)
                progress.advance(task)
                continue
            try:
                rgb, alpha = read_image(src)
                result = colorizer.colorize_rgb(rgb)
                _save(to_pil(result, alpha), dst, fmt)
                if args.compare:
                    side = np.concatenate([_flatten(rgb, alpha), _flatten(result, alpha)], axis=1)
                    _save(to_pil(side), cmp_dst, fmt)
                done += 1
            except (ColorizationError, ValueError, OSError, MemoryError) as e:
                msg = f"{src}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                failures.append(msg)
                progress.console.print(f"failed: {msg}", markup=False)
            progress.advance(task)
    summary = f"{done} colorized, {skipped} already existed, {len(failures)} failed or skipped"
    console.print(f"{summary} → {args.output}", markup=False)
    if done == 0 and (skipped == 0 or failures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
