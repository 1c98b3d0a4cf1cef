"""Sources written by code, once, into root/images: the bundled sample photographs and the synthetic scenes.

Generation is atomic (a complete temp folder swapped in with os.replace) and locked (a lock file in root:
concurrent first runs, the jobs of a parallel sweep or several DDP ranks, take turns, and the later ones find
the images ready); it is recorded in a manifest of its parameters, and any change of them regenerates. Both
run offline: they are the defaults of the CPU demo and the tests.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from colorization import checks
from colorization.atomic import atomic_path, file_lock
from colorization.data.images import to_rgb
from colorization.data.sources.base import Source
from colorization.errors import DataUnavailableError

log = logging.getLogger(__name__)


class _Generated(Source):
    """A source whose images are written once by code into root/images, atomically, with a manifest."""

    use_split_folders = False

    def __init__(self, root: str | Path, count: int, size: int, seed: int) -> None:
        """Store generation parameters; the manifest records them so that a change regenerates."""
        super().__init__(root)
        self.count = checks.integer("data.source.count", count, low=1)
        self.size = checks.integer("data.source.size", size, low=8)
        self.seed = checks.integer("data.source.seed", seed)

    @property
    def image_root(self) -> Path:
        """Generated images live in root/images."""
        return self.root / "images"

    @property
    def _manifest(self) -> Path:
        """The JSON file that records the parameters the images were generated with."""
        return self.root / f".{self.name}.json"

    def _params(self) -> dict:
        """Generation parameters: any change makes ready() false, so prepare() regenerates."""
        return {"count": self.count, "size": self.size, "seed": self.seed, "version": 1}

    def ready(self) -> bool:
        """Images exist and were generated with the current parameters."""
        try:
            return json.loads(self._manifest.read_text()) == self._params() and self.image_root.is_dir()
        except (OSError, ValueError):
            return False

    def prepare(self, download: bool = True) -> None:
        """Generate into a temp folder beside the target, then swap it in (never a half-written folder).

        Under the lock of root/images: a second process waits, then finds the images ready.
        """
        if self.ready():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.image_root, f"generating the {self.name} images in {self.root}"):
            if self.ready():  # made by the process this one waited for
                return
            tmp = Path(tempfile.mkdtemp(prefix=".images.tmp-", dir=self.root))
            old = self.root / f".images.old-{tmp.name.rsplit('-', 1)[-1]}"
            try:
                self._generate(tmp)
                self._manifest.unlink(missing_ok=True)  # not ready while the folders change places
                if self.image_root.exists():
                    os.replace(self.image_root, old)
                os.replace(tmp, self.image_root)
                with atomic_path(self._manifest) as manifest:
                    manifest.write_text(json.dumps(self._params()))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(old, ignore_errors=True)

    def _generate(self, out: Path) -> None:
        """Write the images into the empty folder out (subclasses)."""
        raise NotImplementedError


SAMPLE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "stereo_motorcycle",
)
"""scikit-image's bundled colour photos that need no download (cat() is chelsea; lily/eagle/skin download).

Photographs only: `logo` (a graphic with alpha) is left out. The list is part of the Samples manifest, so a
folder generated from another list is regenerated."""

SAMPLE_VAL_PHOTOS = ("coffee",)
SAMPLE_TEST_PHOTOS = ("chelsea",)
"""The photographs whose crops make the samples' val and test splits (about 54 crops each of the default 480):
two natural scenes, held out whole so that no crop of them is trained on; the other six photographs (seven
views) train. Chelsea the cat tests, the coffee cup validates."""


def _sample_views() -> dict[str, dict[str, np.ndarray]]:
    """scikit-image's bundled colour photos, photo name -> {view name: RGB uint8} (a stereo pair has two)."""
    from skimage import data

    photos: dict[str, dict[str, np.ndarray]] = {}
    for name in SAMPLE_PHOTOS:
        try:
            img = getattr(data, name)()
        except Exception as exc:  # noqa: BLE001 - a missing optional file only shrinks the set
            log.warning("scikit-image sample %s unavailable (%s); skipped", name, exc)
            continue
        views = {f"{name}_left": img[0], f"{name}_right": img[1]} if isinstance(img, tuple) else {name: img}
        photos[name] = {}
        for key, arr in views.items():
            mode = "RGBA" if arr.ndim == 3 and arr.shape[2] == 4 else "RGB"
            photos[name][key] = np.asarray(to_rgb(Image.fromarray(arr, mode)))
    if not photos:
        raise DataUnavailableError("scikit-image's sample photos are missing: reinstall scikit-image")
    return photos


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled colour photos as RGB uint8 arrays (stereo_motorcycle: left and right views)."""
    return {view: arr for views in _sample_views().values() for view, arr in views.items()}


def _photo_list(key: str, photos: object) -> tuple[str, ...]:
    """A list of SAMPLE_PHOTOS names (data.source.val_photos / test_photos), checked."""
    allowed = f"a list of names among {', '.join(SAMPLE_PHOTOS)}"
    if isinstance(photos, str) or not isinstance(photos, Sequence):
        raise checks.not_allowed(key, photos, allowed)
    if not all(name in SAMPLE_PHOTOS for name in photos):
        raise checks.not_allowed(key, list(photos), allowed)
    return tuple(str(name) for name in photos)


class Samples(_Generated):
    """The default, offline source: random square crops of scikit-image's bundled colour photographs.

    Whole photographs are held out: the crops of val_photos make the val split and those of test_photos the
    test split (written to images/val and images/test, so the split folders decide), the rest train. Crops of
    one photograph overlap, so splitting crops by path would test on photographs seen in training.
    """

    name = "samples"
    use_split_folders = True

    def __init__(
        self,
        root: str | Path,
        count: int = 480,
        size: int = 96,
        seed: int = 0,
        min_scale: float = 0.2,
        max_scale: float = 0.6,
        val_photos: list[str] | tuple[str, ...] = SAMPLE_VAL_PHOTOS,
        test_photos: list[str] | tuple[str, ...] = SAMPLE_TEST_PHOTOS,
    ) -> None:
        """count crops, squares of min_scale..max_scale of a photo's shorter side, resized to size px;
        val_photos / test_photos: the photographs (SAMPLE_PHOTOS names) held out whole for val and test."""
        super().__init__(root, count, size, seed)
        allowed = "0 < data.source.min_scale <= data.source.max_scale <= 1"
        lo = checks.number("data.source.min_scale", min_scale, allowed)
        hi = checks.number("data.source.max_scale", max_scale, allowed)
        if not 0 < lo <= 1:
            raise checks.out_of_range("data.source.min_scale", min_scale, allowed)
        if not lo <= hi <= 1:
            raise checks.out_of_range("data.source.max_scale", max_scale, allowed)
        self.min_scale, self.max_scale = lo, hi
        self.val_photos = _photo_list("data.source.val_photos", val_photos)
        self.test_photos = _photo_list("data.source.test_photos", test_photos)
        both = sorted(set(self.val_photos) & set(self.test_photos))
        if both:
            raise checks.not_allowed(
                "data.source.test_photos", list(self.test_photos), f"photographs not in val_photos ({both})"
            )
        if not set(SAMPLE_PHOTOS) - set(self.val_photos) - set(self.test_photos):
            raise checks.not_allowed(
                "data.source.test_photos", list(self.test_photos), "lists that leave a photograph to train on"
            )

    def _params(self) -> dict:
        """Base parameters, crop scales, the photo list and the held-out photos (any change regenerates)."""
        return {
            **super()._params(),
            "min_scale": self.min_scale,
            "max_scale": self.max_scale,
            "photos": list(SAMPLE_PHOTOS),
            "val_photos": list(self.val_photos),
            "test_photos": list(self.test_photos),
        }

    def split_of(self, photo: str) -> str:
        """The split the crops of a photograph (a SAMPLE_PHOTOS name) go to."""
        return "val" if photo in self.val_photos else "test" if photo in self.test_photos else "train"

    def split_note(self) -> str:
        """Which photographs are held out, for the DataModule's log line."""
        val, test = ", ".join(self.val_photos) or "none", ", ".join(self.test_photos) or "none"
        return f"held-out photographs: val {val}, test {test}"

    def _generate(self, out: Path) -> None:
        """Write count JPEG crops into out/<split>/, cycling over the views, drawn from a seeded generator."""
        views = {view: (photo, img) for photo, v in _sample_views().items() for view, img in v.items()}
        names = sorted(views)
        for split in ("train", "val", "test"):
            (out / split).mkdir()
        rng = np.random.default_rng(self.seed)
        for i in range(self.count):
            name = names[i % len(names)]
            photo, img = views[name]
            h, w = img.shape[:2]
            side = int(min(h, w) * rng.uniform(self.min_scale, self.max_scale))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(img[top : top + side, left : left + side])
            crop = crop.resize((self.size, self.size), Image.LANCZOS)
            crop.save(out / self.split_of(photo) / f"{name}_{i:04d}.jpg", quality=95)


class Synthetic(_Generated):
    """Procedural scenes (see colorization.data.synthetic): image i is synthetic_scene(seed + i, size)."""

    name = "synthetic"

    def __init__(self, root: str | Path, count: int = 1024, size: int = 64, seed: int = 0) -> None:
        """count scenes of size×size pixels, numbered from seed."""
        super().__init__(root, count, size, seed)

    def scene_seed(self, rel: str) -> int:
        """The seed of the scene stored at rel (so its fruit mask can be regenerated with synthetic_scene)."""
        return int(Path(rel).stem.split("_")[-1])

    def _generate(self, out: Path) -> None:
        """Write the scenes as lossless PNGs named scene_<seed>.png."""
        from colorization.data.synthetic import synthetic_scene

        for i in range(self.count):
            rgb, _ = synthetic_scene(self.seed + i, self.size)
            Image.fromarray(rgb).save(out / f"scene_{self.seed + i:06d}.png", compress_level=1)
