"""What a deployed model is: ModelInfo, the contract between export and colorize (ONNX metadata_props).

The keys written by `ModelInfo.to_metadata` are a file format: ``objective``, ``image_size``,
``size_multiple``, ``temperature``, ``hints`` (read back by `from_metadata`), ``input`` and ``output`` (for
people reading the file); export adds ``exported_from``. A model with ``hints`` "true" has a second graph
input, ``hints`` (float32 B×3×H×W: the hints' a/110, b/110 and a 0/1 mask; zeros for none).
Also here: the default network size and the one place that imports the optional ONNX packages, with the
install hint.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from colorization.errors import ColorizationError
from colorization.imaging import L_CENT, L_NORM

__all__ = ["DEFAULT_SIZE", "ONNX_HINT", "ModelInfo", "require"]

DEFAULT_SIZE = 256
"""Network input size when neither --size nor the model says (the size of Zhang et al.'s training crops)."""
ONNX_HINT = 'pip install "colorization-lab[onnx]"'


@dataclass
class ModelInfo:
    """What the colorizer needs to know about a model: how it was trained and what it predicts."""

    objective: str = "unknown"
    image_size: int | None = None
    size_multiple: int = 1
    temperature: float | None = None
    source: str = ""
    hints: bool = False  # the network also takes user hints (B×3×H×W after L)
    extra: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """Return the info as ONNX metadata_props strings (read back by `from_metadata`)."""
        meta = {
            "objective": self.objective,
            "image_size": "" if self.image_size is None else str(int(self.image_size)),
            "size_multiple": str(int(self.size_multiple)),
            "temperature": "" if self.temperature is None else repr(float(self.temperature)),
            "hints": "true" if self.hints else "false",
            "input": f"L_n = (L - {L_CENT:g}) / {L_NORM:g}, float32 Bx1xHxW"
            + ("; hints: a/110, b/110, 0/1 mask, float32 Bx3xHxW" if self.hints else ""),
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
            hints=meta.get("hints", "false") == "true",
        )


def require(package: str) -> Any:
    """Import onnx / onnxruntime, or raise a one-line ColorizationError saying how to install them."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ColorizationError(f"{package} is not installed: {ONNX_HINT}") from None
