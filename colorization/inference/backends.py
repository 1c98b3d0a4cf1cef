"""The two ways to run a network on numpy arrays: PyTorch (a checkpoint) and ONNX Runtime (an export).

A backend is a callable: normalised L, float32 B×1×h×w, in; ab in Lab units, float32 B×2×h×w, out. The
torch side also loads a checkpoint's inference model with what is known about it (objective, trained
size, size_multiple, temperature) and checks a --device string against the machine. torch is imported
inside the functions that need it, so that the ONNX path (numpy, PIL, onnxruntime) never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorization.errors import ColorizationError
from colorization.inference.info import ModelInfo, require

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Backend",
    "OnnxBackend",
    "TorchBackend",
    "load_model",
    "size_multiple",
    "torch_device",
    "trained_size",
]

Backend = Callable[..., np.ndarray]
"""L_n (float32 B×1×h×w) [, hints (float32 B×3×h×w) for a model that takes them] → ab in Lab units
(float32 B×2×h×w, same h and w)."""


def size_multiple(*modules: Any) -> int:
    """The largest `size_multiple` attribute found on the modules or any sub-module (1 if none)."""
    best = 1
    for m in modules:
        subs = m.modules() if hasattr(m, "modules") else [m]
        for sub in subs:
            v = getattr(sub, "size_multiple", None)
            if isinstance(v, int) and v > best:
                best = v
    return best


def trained_size(module: Any) -> int | None:
    """The image size a loaded checkpoint's module was trained at, or None when the checkpoint does not say.

    ``LabDataModule`` saves its hyperparameters, so every checkpoint that ``trainer.fit`` writes with it
    holds the image size; ``load_checkpoint`` keeps them on the module as ``datamodule_hparams``.
    """
    size = (getattr(module, "datamodule_hparams", None) or {}).get("image_size")
    return int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


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
    """Load a checkpoint's inference model (L_n → ab in Lab units) and what is known about it.

    A missing or unreadable file is load_checkpoint's one-line ColorizationError (the one check there is).
    """
    path = Path(ckpt)
    dev = torch_device(device)
    from colorization.objectives import load_checkpoint

    module = load_checkpoint(str(path), map_location=dev, key="--ckpt", perceptual_metrics=False)
    objective = module.objective
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
        image_size=trained_size(module),
        size_multiple=module.input_multiple,
        temperature=t_used,
        source=str(path),
        hints=bool(getattr(model, "takes_hints", False)),
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

    def __call__(self, L_n: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """Predict ab (Lab units) for normalised L (and hint planes, for a model that takes them)."""
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(L_n, dtype=np.float32)).to(self.device)
            if hints is None:
                return self.model(x).float().cpu().numpy()
            h = self.torch.from_numpy(np.ascontiguousarray(hints, dtype=np.float32)).to(self.device)
            return self.model(x, h).float().cpu().numpy()


class OnnxBackend:
    """Run an exported ONNX model with onnxruntime (no torch): colorization.imaging.runtime's tuned Model.

    `threads` intra-op and `inter_threads` inter-op threads; a graph that returns bin logits is decoded by
    the annealed mean at `temperature` (default: the exported T), so its T is chosen at run time.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        threads: int | None = None,
        *,
        inter_threads: int | None = None,
        temperature: float | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ColorizationError(f"ONNX model not found: {path}")
        ort = require("onnxruntime")
        from colorization.imaging.runtime import Model

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ColorizationError("--device cuda asked, but this onnxruntime has no CUDA provider")
            providers.insert(0, "CUDAExecutionProvider")
        elif device != "cpu":
            raise ColorizationError(f"--device {device} is not supported with --onnx (use cpu or cuda)")
        try:
            self.model = Model(path, threads=threads, inter_threads=inter_threads, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own error types
            raise ColorizationError(f"cannot load ONNX model {path}: {str(e).splitlines()[0]}") from None
        self.session = self.model.session
        self.input_name = self.model.inputs[0]
        self.hints_name = (
            self.model.inputs[1] if self.model.hints else None
        )  # a hint-taking model's 2nd input
        self.info = ModelInfo.from_metadata(self.model.meta, source=str(path))
        self.info.hints = self.model.hints
        t = self.info.temperature
        if temperature is not None and not self.model.logits and (t is None or abs(temperature - t) > 1e-9):
            fixed = "has no temperature" if t is None else f"was exported at T={t:g}"
            raise ColorizationError(
                f"this ONNX model {fixed}; the temperature is fixed at export "
                f"(python -m colorization.export --temperature ..., or --bundle for T at run time)"
            )
        if temperature is not None:
            if not temperature > 0:
                raise ColorizationError(f"--temperature must be > 0, got {temperature}")
            self.info.temperature = float(temperature)
        self.temperature = self.info.temperature

    def __call__(self, L_n: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """Predict ab (Lab units) for normalised L (and hint planes; zeros when the model takes them)."""
        try:
            return self.model(L_n, hints, temperature=self.temperature)
        except ValueError as e:
            raise ColorizationError(str(e)) from None
