"""Checkpoint files of the objectives: the one place that checks that a checkpoint exists and loads it.

Every command that takes a checkpoint (train.py's `ckpt_path`, evaluate.py's `ckpt`, colorize and export's
`--ckpt`) goes through `require_checkpoint`, so a missing or damaged file stops with the same one line.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from colorization.errors import ColorizationError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from colorization.objectives.base import ColorizationModule

__all__ = ["LIGHTNING_KEYWORDS", "load_checkpoint", "read_checkpoint", "require_checkpoint"]

LIGHTNING_KEYWORDS = ("last", "best", "hpc", "registry")
"""Values of Lightning's `ckpt_path` that name no file (Lightning resolves them itself)."""


def require_checkpoint(path: str | Path, key: str = "ckpt") -> Path:
    """The path of an existing checkpoint file; ConfigError "KEY=PATH: no such checkpoint file" otherwise."""
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise ConfigError(f"{key}={path}: no such checkpoint file")
    return file


def read_checkpoint(path: str | Path, key: str = "ckpt") -> dict[str, Any]:
    """The contents of an existing checkpoint file, memory-mapped (cheap even for a large file: tensors are
    read when used), without building its module; missing, truncated, empty or foreign files are one line."""
    path = require_checkpoint(path, key)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # noqa: BLE001 - zip errors, unpickling errors, EOF: all mean "not readable"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ColorizationError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(checkpoint, dict):
        raise ColorizationError(f"{path} is not a colorization checkpoint (no colorization_class entry)")
    return checkpoint


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", key: str = "ckpt", **overrides: Any
) -> ColorizationModule:
    """Load any objective's checkpoint (its class is read from the file), in eval mode.

    `overrides` replace saved constructor arguments (e.g. `perceptual_metrics=False` for inference, which
    needs no metrics). The DataModule settings Lightning stores beside the weights (image size, ...) are
    kept on the module as `datamodule_hparams` (empty when the checkpoint has none).
    """
    file = require_checkpoint(path, key)
    checkpoint = read_checkpoint(file)
    class_path = checkpoint.get("colorization_class")
    if not class_path:
        raise ColorizationError(f"{path} is not a colorization checkpoint (no colorization_class entry)")
    module_name, _, cls_name = str(class_path).rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    model = cls.load_from_checkpoint(file, map_location=map_location, weights_only=False, **overrides)
    model.datamodule_hparams = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    return model.eval()
