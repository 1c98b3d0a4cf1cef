"""Images in and out of the colorizer: arrays, PIL images and files as float RGB + alpha, and back.

The colorizer works on float32 RGB H×W×3 in [0, 1] with an optional alpha H×W. This module reads files
(EXIF orientation applied, 16-bit kept, unreadable or oversized files as one-line ColorizationErrors),
splits arrays and PIL images of any mode, writes results per format (JPEG has no alpha: composited over
white), and turns the command line's inputs into planned outputs: files, folders (recursive, sub-folders
kept) and globs in; OUT/<relative stem>.<format> out, or OUT itself for one input and an image suffix.

Reading refuses, from the header and before decoding, an image of more than `max_pixels` pixels
(default: the data index's DEFAULT_MAX_PIXELS; colorizing takes about 100 bytes per pixel, so a 92
megapixel scan needs some 9 GB), and warns (UserWarning) that only the first frame of an animated or
multi-page file is used. Writing is atomic (colorization.atomic): a killed run never leaves a truncated
output under its real name, which the next run would skip as already there.
"""

from __future__ import annotations

import contextlib
import glob
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from colorization.atomic import atomic_write
from colorization.errors import ColorizationError
from colorization.imaging import DEFAULT_MAX_PIXELS, decode, exif_upright, is_image_file, to_float, to_uint8

__all__ = [
    "FORMATS",
    "collect_inputs",
    "flatten",
    "plan_outputs",
    "read_image",
    "save",
    "split_array",
    "split_pil",
    "to_pil",
]

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "tif": "TIFF"}
"""Output suffixes (--format) and the PIL format each is written in."""


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


BYTES_PER_PIXEL = 100
"""About what colorizing costs in memory per pixel (float copies, Lab, resized ab): 9.5 GB at 92 MP."""


@contextlib.contextmanager
def _pillow_limit(max_pixels: int | None) -> Iterator[None]:
    """Let `max_pixels` (not Pillow's own bomb limit) decide what is too large while a file is opened."""
    previous = Image.MAX_IMAGE_PIXELS
    if not max_pixels:
        Image.MAX_IMAGE_PIXELS = None
    elif previous is not None and max_pixels > previous:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _check_size(im: Image.Image, path: Path, max_pixels: int | None) -> None:
    """Refuse (before decoding) more than max_pixels pixels; warn that only a first frame is used."""
    w, h = im.size
    if max_pixels and w * h > max_pixels:
        need = w * h * BYTES_PER_PIXEL / 1e9
        raise ColorizationError(
            f"cannot read image: too large ({w}x{h} = {w * h / 1e6:.1f} megapixels, more than --max-pixels "
            f"{max_pixels}; colorizing it needs about {need:.0f} GB: raise --max-pixels to try)"
        )
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1:
        warnings.warn(f"{path.name} has {frames} frames: only the first one is colorized", stacklevel=3)


def read_image(
    path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image file (EXIF orientation applied, 16-bit kept) as float32 RGB H×W×3 and alpha or None.

    More than `max_pixels` pixels (None or 0: no limit) is a ColorizationError raised from the header,
    before any decoding; an animated or multi-page file warns that only its first frame is used.
    """
    path = Path(path)
    try:
        with _pillow_limit(max_pixels), Image.open(path) as im:
            _check_size(im, path, max_pixels)
            if path.suffix.lower() in (".tif", ".tiff"):
                wide = _read_wide_tiff(path)
                if wide is not None:
                    return wide
            im = exif_upright(im)
            im.load()
            return split_pil(im)
    except Image.DecompressionBombError as e:  # a header that declares billions of pixels: never decoded
        raise ColorizationError(f"cannot read image: too large ({str(e).split('pixels')[0]}pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ColorizationError(f"cannot read image: {first}") from None


def _read_wide_tiff(path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """16-bit RGB(A) TIFF through tifffile when it is installed (Pillow reads it as 8-bit), else None."""
    try:
        import tifffile

        arr = tifffile.imread(path, key=0)
        if arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] in (3, 4):
            return split_array(arr)
    except Exception:  # noqa: BLE001 - fall back to Pillow, which gives the clearer error
        pass
    return None


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """Make an 8-bit RGB or RGBA PIL image from float RGB H×W×3 and optional alpha H×W."""
    if alpha is None:
        return Image.fromarray(to_uint8(rgb), "RGB")
    return Image.fromarray(to_uint8(np.concatenate([rgb, alpha[..., None]], axis=2)), "RGBA")


def flatten(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite RGB over white using alpha (for formats and views without transparency)."""
    if alpha is None:
        return rgb
    a = alpha[..., None]
    return rgb * a + (1.0 - a)


def save(image: Image.Image, path: Path, fmt: str) -> None:
    """Save atomically (a temporary file beside `path`, renamed over it when complete) with sensible
    per-format options (JPEG has no alpha: composite over white)."""
    options: dict[str, int] = {}
    if fmt == "JPEG":
        if image.mode == "RGBA":
            rgb = np.asarray(image, dtype=np.float32) / 255.0
            image = to_pil(flatten(rgb[..., :3], rgb[..., 3]))
        options["quality"] = 95
    elif fmt == "WEBP":
        options["quality"] = 95
    with atomic_write(path) as file:
        image.save(file, fmt, **options)


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


def plan_outputs(
    items: list[tuple[Path, Path]], out: Path, fmt_arg: str | None
) -> tuple[list[tuple[Path, Path, str]], list[str]]:
    """Decide each input's output path and PIL format; report name collisions."""
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
