"""Prepare a study: pick the photos, cut each to a square of `size` px, and write its real picture, each
method's fake and the vigilance fake under random asset ids, then study.json.

Every picture goes through the same steps (centre square crop, antialiased resize, 8-bit PNG written
with the same settings and no metadata), so no size or format tells a real one from a fake. A model
colorizes the square real photo (it sees only its lightness); a folder's image is cut the same way. Photos
without chroma (black-and-white originals) are left out: there is nothing to tell apart. A photo that a
folder method lacks is left out for every method, so that each method is judged on the same photos.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from colorization.errors import ColorizationError
from colorization.imaging import rgb_to_lab, to_uint8
from colorization.inference.files import collect_inputs, flatten, read_image
from colorization.turing.methods import Method, gray_method, hue_rotated
from colorization.turing.study import ImageEntry, Protocol, Study, new_asset_id

log = logging.getLogger(__name__)

__all__ = ["MIN_CHROMA", "collect_photos", "prepare_study", "square"]

MIN_CHROMA = 2.0
"""Mean ab chroma (Lab units) below which a photo counts as black-and-white and is left out."""


def square(source: np.ndarray | str | Path, size: int) -> np.ndarray:
    """A picture as float RGB size×size×3 in [0, 1]: the centred square of its short side, resized
    (antialiased). Alpha is composited over white."""
    if isinstance(source, (str, Path)):
        rgb, alpha = read_image(source)
        source = flatten(rgb, alpha)
    image = Image.fromarray(to_uint8(source))
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    image = image.crop(box).resize((size, size), Image.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0


def _write(study: Study, rgb: np.ndarray) -> str:
    """Save one picture under a new asset id (8-bit PNG, no metadata); returns the id."""
    asset = new_asset_id()
    Image.fromarray(to_uint8(rgb), "RGB").save(
        study.asset_path(asset), "PNG", optimize=False, compress_level=6
    )
    return asset


def collect_photos(images: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(file, name) of every image under the given files and folders; name is the relative path without
    suffix (how folder methods name their colorized copy)."""
    found, problems = collect_inputs([str(p) for p in images])
    if not found:
        raise ColorizationError(
            "no photos: " + ("; ".join(problems) or "give --images FOLDER or --data NAME")
        )
    for problem in problems:
        log.warning("%s", problem)
    return [(path, rel.as_posix()) for path, rel in found]


def _progress():  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    )


def prepare_study(
    out: str | Path,
    photos: list[tuple[Path, str]],
    methods: list[Method],
    protocol: Protocol | None = None,
    count: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Study:
    """Write a study into the folder `out` (new or empty) for `methods` and the gray input; `count` photos
    drawn with `seed` (all when None). Returns the study."""
    protocol = protocol or Protocol()
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise ColorizationError(f"{root} is not empty: give a new folder for the study")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ColorizationError(f"two methods have the same name ({', '.join(names)}): give NAME=SOURCE")
    methods = [*methods, gray_method()]
    chosen = list(photos)
    random.Random(seed).shuffle(chosen)
    study = Study(
        root, protocol, [m.name for m in methods], [], {m.name: f"{m.kind}: {m.source}" for m in methods}
    )
    study.assets.mkdir(parents=True, exist_ok=True)
    skipped = {"black-and-white": 0, "missing in a folder method": 0, "unreadable": 0}
    wanted = len(chosen) if count is None else min(count, len(chosen))
    bar = _progress() if progress else None
    task = bar.add_task("preparing the study", total=wanted) if bar else None
    if bar:
        bar.start()
    try:
        for path, name in chosen:
            if len(study.images) >= wanted:
                break
            entry = _prepare_photo(study, path, name, methods, skipped)
            if entry is not None:
                study.images.append(entry)
                if bar:
                    bar.advance(task)
    finally:
        if bar:
            bar.stop()
    left_out = ", ".join(f"{n} {why}" for why, n in skipped.items() if n)
    if not study.images:
        raise ColorizationError(f"no photo could be used ({left_out or 'none given'})")
    if left_out:
        log.warning("photos left out: %s", left_out)
    study.save()
    return study


def _prepare_photo(
    study: Study, path: Path, name: str, methods: list[Method], skipped: dict[str, int]
) -> ImageEntry | None:
    """The assets of one photo (None, counted in `skipped`, when it cannot be used)."""
    size = study.protocol.size
    try:
        real = square(path, size)
    except ColorizationError:
        skipped["unreadable"] += 1
        return None
    if float(np.hypot(*np.moveaxis(rgb_to_lab(real)[..., 1:], -1, 0)).mean()) < MIN_CHROMA:
        skipped["black-and-white"] += 1
        return None
    fakes: dict[str, np.ndarray] = {}
    for method in methods:
        made = method.make(real, name)
        if made is None:
            skipped["missing in a folder method"] += 1
            return None
        try:
            fakes[method.name] = square(made, size)
        except ColorizationError:
            skipped["unreadable"] += 1
            return None
    entry = ImageEntry(name=name, real=_write(study, real), vigilance=_write(study, hue_rotated(real)))
    entry.fakes = {m: _write(study, rgb) for m, rgb in fakes.items()}
    return entry
