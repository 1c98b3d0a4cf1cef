"""What makes the fakes of a study: a model (a checkpoint or an ONNX file, through the Colorizer), a
published model by name (`Colorizer.from_pretrained`, where the installed version has it), a folder of
images already colorized and named like the originals, and the gray input itself (every study's floor).

A method is given on the command line as `[NAME=]SOURCE`: SOURCE is a folder, a .ckpt/.onnx file, or
`pretrained:NAME`; NAME (default: the file or folder name) is how the results call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorization.errors import ColorizationError
from colorization.imaging import is_image_file, lab_to_rgb, rgb_to_lab
from colorization.turing.study import GRAY

__all__ = ["Method", "gray", "gray_method", "hue_rotated", "parse_method", "pretrained_colorizer"]

MODEL_SUFFIXES = (".ckpt", ".onnx", ".pt", ".pth")
PRETRAINED = "pretrained:"
RESERVED = (GRAY, "vigilance")


@dataclass
class Method:
    """A named way to get the fake of a photo: `make(rgb, name)` takes the real photo as float RGB
    H×W×3 in [0, 1] and its name (relative path without suffix) and returns the fake, or None when the
    method has none for this photo (a folder that lacks it)."""

    name: str
    kind: str
    source: str
    make: Callable[[np.ndarray, str], np.ndarray | str | Path | None] = field(repr=False)


def gray(rgb: np.ndarray) -> np.ndarray:
    """The photo's lightness alone: what every model is given (Lab with a = b = 0)."""
    lab = rgb_to_lab(rgb)
    lab[..., 1:] = 0.0
    return lab_to_rgb(lab)


def hue_rotated(rgb: np.ndarray, degrees: float = 180.0) -> np.ndarray:
    """The photo with every hue turned by `degrees` in the ab plane (same lightness and chroma): an obvious
    fake for vigilance trials (blue faces, purple grass)."""
    lab = rgb_to_lab(rgb)
    t = np.deg2rad(degrees)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1] = np.cos(t) * a - np.sin(t) * b
    lab[..., 2] = np.sin(t) * a + np.cos(t) * b
    return lab_to_rgb(lab)


def pretrained_colorizer(name: str, **kwargs: Any) -> Any:
    """The Colorizer of a published model by name, through `Colorizer.from_pretrained` when the installed
    colorization has it; a one-line error otherwise."""
    from colorization.inference import Colorizer

    factory = getattr(Colorizer, "from_pretrained", None)
    if factory is None:
        raise ColorizationError(
            f"pretrained:{name}: this version has no published models (Colorizer.from_pretrained); "
            "give a checkpoint, an ONNX file or a folder of colorized images"
        )
    return factory(name, **kwargs)


def _colorizer_method(name: str, kind: str, source: str, colorizer: Any) -> Method:
    def make(rgb: np.ndarray, _: str) -> np.ndarray:
        return np.asarray(colorizer.colorize_rgb(rgb), dtype=np.float32)

    return Method(name, kind, source, make)


def _folder_method(name: str, folder: Path) -> Method:
    files = [f for f in folder.rglob("*") if f.is_file() and is_image_file(f)]
    if not files:
        raise ColorizationError(f"--method {name}={folder}: no images in this folder")
    by_path = {f.relative_to(folder).with_suffix("").as_posix(): f for f in files}
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)

    def make(_: np.ndarray, photo: str) -> Path | None:
        if photo in by_path:
            return by_path[photo]
        same = by_stem.get(Path(photo).name, [])
        return same[0] if len(same) == 1 else None

    return Method(name, "folder", str(folder), make)


def parse_method(spec: str, device: str = "cpu") -> Method:
    """A method from its command-line form `[NAME=]SOURCE` (see the module docstring)."""
    name, sep, source = spec.partition("=")
    if not sep:
        name, source = "", spec
    if not source:
        raise ColorizationError(
            f"--method {spec!r}: give [NAME=]SOURCE (a folder, a checkpoint or pretrained:NAME)"
        )
    if name in RESERVED:
        raise ColorizationError(f"--method {spec}: the name {name!r} is taken; give another NAME=SOURCE")
    if source.startswith(PRETRAINED):
        model = source[len(PRETRAINED) :]
        method = _colorizer_method(
            name or model, "pretrained", source, pretrained_colorizer(model, device=device)
        )
    else:
        path = Path(source)
        if path.is_dir():
            method = _folder_method(name or path.name, path)
        elif path.is_file() and path.suffix.lower() in MODEL_SUFFIXES:
            from colorization.inference import Colorizer

            colorizer = Colorizer.load(path, device=device)
            label = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
            method = _colorizer_method(name or label, "model", str(path), colorizer)
        elif path.exists():
            raise ColorizationError(
                f"--method {spec}: {path} is neither a folder nor a model ({', '.join(MODEL_SUFFIXES)})"
            )
        else:
            raise ColorizationError(f"--method {spec}: no such file or folder (or pretrained:NAME)")
    if method.name in RESERVED or not method.name.strip():
        raise ColorizationError(f"--method {spec}: the name {method.name!r} is taken; give NAME=SOURCE")
    return method


def gray_method() -> Method:
    """The gray input as a method (added to every study)."""
    return Method(GRAY, "gray", "the gray input", lambda rgb, _: gray(rgb))
