"""The Colorizer: load a model once, then colorize PIL images, arrays or files at their full resolution.

How a photo is colorized: the input (any size) is converted to CIE Lab at full resolution; its L is
resized to the size the network was trained at (``size`` overrides, DEFAULT_SIZE when the model does not
say), the network predicts ab there, ab is resized bilinearly back to the original size and joined with
the ORIGINAL full-resolution L. Pixels whose predicted chroma falls outside the sRGB gamut have their
chroma reduced (never their lightness), so the output's L equals the input's L up to 8-bit quantisation.

- Aspect: by default the L image is squashed to size × size, as Zhang et al.'s demo does. That is the
  geometry the network was trained on (square crops), works for every net whatever its size_multiple,
  and ab is smooth enough that stretching it back costs nothing visible. ``keep_aspect`` instead scales
  the short side to ``size`` and rounds the long side to the net's size_multiple (no padding, so no
  artificial borders enter the receptive field).
- ``hints`` (a network that takes them, e.g. ``from_pretrained("siggraph17")``): user points with a colour
  (colorization.inference.hints: the JSON format of ``colorize --hints``), mapped to the network's size
  as hint planes; without hints such a network colorizes automatically.
- ``enhance=(w, c, alpha, beta)`` applies the saturation enhancer to the result, then puts the original
  L back, so enhancement changes chroma only.
- Colour work is colorization.imaging.runtime's numpy float32 on both backends (the code a deploy bundle
  runs); torch is imported only by the
  torch backend, so a Colorizer made `from_onnx` never imports torch (nor scikit-image).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from colorization.errors import ColorizationError
from colorization.imaging import to_uint8, to_uint16
from colorization.imaging.runtime import compose, lightness, net_input, resize_planes
from colorization.inference.backends import Backend, OnnxBackend, TorchBackend, load_model, size_multiple
from colorization.inference.files import read_image, split_array, split_pil, to_pil
from colorization.inference.hints import Hint, hint_planes
from colorization.inference.info import DEFAULT_SIZE, ModelInfo

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Colorizer"]


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
        backend = OnnxBackend(path, device, threads, temperature=temperature)
        return cls(backend, backend.info, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        *,
        weights: str | Path | None = None,
        temperature: float | None = None,
        device: str = "cpu",
        threads: int | None = None,
        **kwargs: Any,
    ) -> Colorizer:
        """Colorizer for published weights ("eccv16", "siggraph17": colorization.nets.registry), downloaded
        once into the cache; `weights` uses a copy of the released file instead (no network needed)."""
        from colorization.inference.pretrained import load_pretrained

        model, info = load_pretrained(name, weights=weights, temperature=temperature, device=device)
        return cls(TorchBackend(model, device, threads), info, **kwargs)

    @classmethod
    def from_module(
        cls, model: torch.nn.Module, *, device: str = "cpu", info: ModelInfo | None = None, **kwargs: Any
    ) -> Colorizer:
        """Colorizer for any torch module mapping L_n B×1×H×W to ab (Lab units) B×2×H×W."""
        info = info or ModelInfo(
            size_multiple=size_multiple(model), hints=bool(getattr(model, "takes_hints", False))
        )
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

    def predict_ab(self, L: np.ndarray, hints: Sequence[Hint] | None = None) -> np.ndarray:
        """ab (Lab units, 2×H×W float32) for a full-resolution L (H×W, Lab units), via the net's size;
        `hints` (points in L's pixels) need a network that takes them."""
        H, W = L.shape
        h, w = self.net_size(H, W)
        L_n = net_input(L, (h, w))  # 1×1×h×w
        if hints is None:
            ab = np.asarray(self.backend(L_n), dtype=np.float32)
        else:
            if not self.info.hints:
                raise ColorizationError(
                    "hints need a model that takes user hints (e.g. --pretrained siggraph17)"
                )
            ab = np.asarray(
                self.backend(L_n, hint_planes(list(hints), (H, W), (h, w))[None]), dtype=np.float32
            )
        if ab.ndim != 4 or ab.shape[:2] != (1, 2):
            raise ColorizationError(f"the model returned shape {tuple(ab.shape)}, expected 1×2×{h}×{w}")
        return resize_planes(ab[0], (H, W))

    def net_batch(self, L: np.ndarray) -> np.ndarray:
        """Normalised L at the network's size, N×1×h×w float32, for N full-resolution frames' L (N×H×W):
        the batched form of predict_ab's input (films: colorization.inference.video)."""
        size_hw = self.net_size(*L.shape[1:])
        return np.concatenate([net_input(frame, size_hw) for frame in L])

    def full_ab(self, ab: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
        """ab at the net's size (2×h×w) resized to a frame's full size, as predict_ab resizes it."""
        return resize_planes(ab, size_hw)

    def compose_rgb(self, L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """Join full-resolution L (H×W) and predicted ab (2×H×W) into float32 RGB (gamut fitted, the
        enhancer applied to chroma only), as colorize_rgb does."""
        return compose(L, ab, self.enhance)

    def colorize_rgb(self, rgb: np.ndarray, hints: Sequence[Hint] | None = None) -> np.ndarray:
        """Colorize float RGB H×W×3 in [0,1] (colour is reduced to its L) → float32 RGB H×W×3 in [0,1]."""
        L = lightness(rgb)
        return self.compose_rgb(L, self.predict_ab(L, hints))

    def colorize(
        self, image: Image.Image | np.ndarray | str | Path, hints: Sequence[Hint] | None = None
    ) -> Image.Image | np.ndarray:
        """Colorize a PIL image (→ RGB/RGBA PIL), an array (→ same dtype and channels) or a file (→ PIL)."""
        if isinstance(image, (str, Path)):
            rgb, alpha = read_image(image)
            return to_pil(self.colorize_rgb(rgb, hints), alpha)
        if isinstance(image, Image.Image):
            rgb, alpha = split_pil(image)
            return to_pil(self.colorize_rgb(rgb, hints), alpha)
        arr = np.asarray(image)
        rgb, alpha = split_array(arr)
        out = self.colorize_rgb(rgb, hints)
        if alpha is not None:
            out = np.concatenate([out, alpha[..., None]], axis=2)
        if arr.dtype == np.uint8:
            return to_uint8(out)
        if arr.dtype == np.uint16:
            return to_uint16(out)
        return out
