"""The dataset catalogue: one class per source, each knowing where its images live and how to get them.

A source owns a root folder. `prepare()` makes its images exist below `image_root` (generate, download and
extract, or check that the user put them there) and raises DataUnavailableError with one line saying what to
do otherwise. `accept(rel)` filters files (e.g. cats among the Oxford-IIIT pets); `use_split_folders` says
whether train/val/test folder names decide the split.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from colorization.data.download import download as fetch
from colorization.data.download import extract
from colorization.data.images import is_image_file, to_rgb
from colorization.errors import ConfigError, DataUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    """URL, file name, checksum when one is known for sure (else only the format is checked)."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    note: str = ""


def _has_images(folder: Path) -> bool:
    """True when some non-hidden image file exists below folder."""
    if not folder.is_dir():
        return False
    for _, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(is_image_file(Path(n)) and not n.startswith(".") for n in filenames):
            return True
    return False


class Source:
    """Base class: a folder of images below root; subclasses add generation or downloads."""

    name = "source"
    use_split_folders = True

    def __init__(self, root: str | Path) -> None:
        """Remember the root folder (nothing is touched until prepare())."""
        self.root = Path(root).expanduser()

    @property
    def image_root(self) -> Path:
        """The folder the index walks; relative paths in the index are relative to it."""
        return self.root

    def accept(self, rel: str) -> bool:
        """Whether an image file (path relative to image_root) belongs to this source."""
        return True

    def ready(self) -> bool:
        """Whether the images are in place."""
        return _has_images(self.image_root)

    def prepare(self, download: bool = True) -> None:
        """Make the images exist or raise DataUnavailableError saying what to do."""
        if not self.ready():
            raise DataUnavailableError(self.missing_message())

    def missing_message(self) -> str:
        """One line telling the user where to put the files."""
        return f"no images found under {self.image_root}: put image files there (any sub-folders)"

    def __repr__(self) -> str:
        """Class name and root, for logs."""
        return f"{type(self).__name__}(root={str(self.root)!r})"


class Folder(Source):
    """Any directory of images, searched recursively; train/val/test sub-folders are used when present."""

    name = "folder"

    def missing_message(self) -> str:
        """Tell the user to point data.root at their folder."""
        return f"no images found under {self.root}: pass data.root=DIR (searched recursively)"


class _Generated(Source):
    """A source whose images are written once by code into root/images, atomically, with a manifest."""

    use_split_folders = False

    def __init__(self, root: str | Path, count: int, size: int, seed: int) -> None:
        """Store generation parameters; the manifest records them so that a change regenerates."""
        super().__init__(root)
        if count < 1 or size < 8:
            raise ConfigError(
                f"{self.name}: count must be >= 1 and size >= 8 (got count={count}, size={size})"
            )
        self.count, self.size, self.seed = int(count), int(size), int(seed)

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
        """Generate into a temp folder beside the target, then swap it in (never a half-written folder)."""
        if self.ready():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".images.tmp-", dir=self.root))
        try:
            self._generate(tmp)
            if self.image_root.exists():
                shutil.rmtree(self.image_root)
            os.replace(tmp, self.image_root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._manifest.write_text(json.dumps(self._params()))

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


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled colour photos as RGB uint8 arrays (stereo_motorcycle: left and right views)."""
    from skimage import data

    photos: dict[str, np.ndarray] = {}
    for name in SAMPLE_PHOTOS:
        try:
            img = getattr(data, name)()
        except Exception as exc:  # noqa: BLE001 - a missing optional file only shrinks the set
            log.warning("scikit-image sample %s unavailable (%s); skipped", name, exc)
            continue
        views = {f"{name}_left": img[0], f"{name}_right": img[1]} if isinstance(img, tuple) else {name: img}
        for key, arr in views.items():
            mode = "RGBA" if arr.ndim == 3 and arr.shape[2] == 4 else "RGB"
            photos[key] = np.asarray(to_rgb(Image.fromarray(arr, mode)))
    if not photos:
        raise DataUnavailableError("scikit-image's sample photos are missing: reinstall scikit-image")
    return photos


class Samples(_Generated):
    """The default, offline source: random square crops of scikit-image's bundled colour photographs."""

    name = "samples"

    def __init__(
        self,
        root: str | Path,
        count: int = 480,
        size: int = 96,
        seed: int = 0,
        min_scale: float = 0.2,
        max_scale: float = 0.6,
    ) -> None:
        """count crops, squares of min_scale..max_scale of a photo's shorter side, resized to size px."""
        super().__init__(root, count, size, seed)
        if not 0 < min_scale <= max_scale <= 1:
            raise ConfigError(f"samples: need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)

    def _params(self) -> dict:
        """Base parameters plus the crop scales and the photo list (dropping a photo regenerates)."""
        return {
            **super()._params(),
            "min_scale": self.min_scale,
            "max_scale": self.max_scale,
            "photos": list(SAMPLE_PHOTOS),
        }

    def _generate(self, out: Path) -> None:
        """Write count JPEG crops, cycling over the photos, from a generator seeded with seed."""
        photos = sample_photos()
        names = sorted(photos)
        rng = np.random.default_rng(self.seed)
        for i in range(self.count):
            name = names[i % len(names)]
            img = photos[name]
            h, w = img.shape[:2]
            side = int(min(h, w) * rng.uniform(self.min_scale, self.max_scale))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(img[top : top + side, left : left + side])
            crop = crop.resize((self.size, self.size), Image.LANCZOS)
            crop.save(out / f"{name}_{i:04d}.jpg", quality=95)


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


class _Downloaded(Source):
    """One public archive: downloaded (resumable, verified) to root/downloads, then extracted atomically."""

    archive: Archive
    folder = "extracted"

    @property
    def extracted(self) -> Path:
        """Folder the archive is extracted into (atomically: complete or absent)."""
        return self.root / self.folder

    @property
    def image_root(self) -> Path:
        """The extracted archive."""
        return self.extracted

    def prepare(self, download: bool = True) -> None:
        """Download and extract unless the images are already there."""
        if self.ready():
            return
        if self.extracted.exists():
            raise DataUnavailableError(
                f"{self.extracted} exists but holds no usable images: delete it and run again to re-extract"
            )
        archive = self.root / "downloads" / self.archive.filename
        if not archive.exists() and not download:
            raise DataUnavailableError(self.missing_message())
        if not archive.exists() or self.archive.md5 or self.archive.sha256:
            log.info("downloading %s to %s (%s)", self.archive.url, archive, self.archive.note or "no note")
            fetch(self.archive.url, archive, md5=self.archive.md5, sha256=self.archive.sha256)
        extract(archive, self.extracted)
        if not self.ready():
            raise DataUnavailableError(
                f"{archive} held no usable images; delete it and {self.extracted}, then retry"
            )

    def missing_message(self) -> str:
        """Where the archive goes when it has to be fetched by hand."""
        return (
            f"{self.name} is not downloaded: download {self.archive.url} and save it as "
            f"{self.root / 'downloads' / self.archive.filename} (it is extracted on first use)"
        )


CAT_BREEDS = (
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
    "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
)  # fmt: skip
"""The 12 cat breeds of Oxford-IIIT Pet (file names start with the breed; dog breeds are lower case)."""


class Cats(_Downloaded):
    """Cat photos: Oxford-IIIT Pet's 12 cat breeds (public), or Kaggle Dogs vs Cats' cats (variant=kaggle)."""

    name = "cats"
    use_split_folders = False
    archive = Archive(
        url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        filename="images.tar.gz",
        md5="5c4f3ee8e5d25df40f4fd59a7f44e54c",
        note="Oxford-IIIT Pet images (about 790 MB); the MD5 is the one torchvision pins for this file",
    )
    folder = "oxford-iiit-pet"

    def __init__(self, root: str | Path, variant: str = "pets") -> None:
        """variant: "pets" (Oxford-IIIT Pet, downloaded) or "kaggle" (Dogs vs Cats, put by the user)."""
        super().__init__(root)
        if variant not in ("pets", "kaggle"):
            raise ConfigError(f"cats: variant must be 'pets' or 'kaggle', got {variant!r}")
        self.variant = variant

    @property
    def image_root(self) -> Path:
        """Extracted pets images, or the user's Kaggle folder."""
        return self.extracted / "images" if self.variant == "pets" else self.root / "kaggle"

    def accept(self, rel: str) -> bool:
        """Only cats: capitalised breed names in Oxford-IIIT Pet, cat.N.jpg in Kaggle Dogs vs Cats."""
        name = rel.rsplit("/", 1)[-1]
        if self.variant == "pets":
            return name.rsplit("_", 1)[0] in CAT_BREEDS
        return name.lower().startswith("cat.")

    def prepare(self, download: bool = True) -> None:
        """Download Oxford-IIIT Pet, or check for the Kaggle folder."""
        if self.variant == "pets":
            return super().prepare(download)
        if not self.ready():
            raise DataUnavailableError(self.missing_message())

    def missing_message(self) -> str:
        """What to download and where to put it."""
        if self.variant == "pets":
            return super().missing_message()
        return (
            "cats (Kaggle Dogs vs Cats) needs a Kaggle account: download train.zip from "
            f"https://www.kaggle.com/c/dogs-vs-cats/data and unzip it into {self.root / 'kaggle'} "
            f"(giving {self.root / 'kaggle' / 'train' / 'cat.0.jpg'}), or use data.source.variant=pets"
        )


class Mirflickr(_Downloaded):
    """MIRFLICKR-25k: 25 000 Flickr photos (report 000 trains at 224 px)."""

    name = "mirflickr"
    use_split_folders = False
    archive = Archive(
        url="https://press.liacs.nl/mirflickr/mirflickr25k.v3b/mirflickr25k.zip",
        filename="mirflickr25k.zip",
        note="about 2.9 GB; no checksum pinned (none known for sure): only checked to be a valid zip",
    )
    folder = "mirflickr25k"


class ImageNet(Source):
    """A folder in ImageNet layout (root/train/<wnid>/*.JPEG, optional root/val/<wnid>/), any class subset."""

    name = "imagenet"

    def __init__(self, root: str | Path, classes: list[str] | int | None = None) -> None:
        """classes: None for all, a list of class folders (wnids), or N for the first N in sorted order."""
        super().__init__(root)
        if isinstance(classes, bool) or (isinstance(classes, int) and classes < 1):
            raise ConfigError(
                f"imagenet: data.classes must be a list of class folders or an int > 0, got {classes}"
            )
        self.classes = classes
        self._chosen: set[str] | None = None

    def _class_set(self) -> set[str] | None:
        """The chosen class folders (None: all), resolved once from data.classes."""
        if self.classes is None:
            return None
        if self._chosen is None:
            if isinstance(self.classes, int):
                train = self.root / "train"
                names = sorted(d.name for d in train.iterdir() if d.is_dir()) if train.is_dir() else []
                self._chosen = set(names[: self.classes])
            else:
                self._chosen = {str(c) for c in self.classes}
        return self._chosen

    def accept(self, rel: str) -> bool:
        """Keep files whose class folder (the parent folder) is in the subset."""
        chosen = self._class_set()
        parts = rel.split("/")
        return chosen is None or (len(parts) >= 2 and parts[-2] in chosen)

    def missing_message(self) -> str:
        """ImageNet needs an account: say where the files go."""
        return (
            "imagenet needs an account: download ILSVRC2012 from https://image-net.org/download.php as "
            f"{self.root}/train/<wnid>/*.JPEG (and optionally {self.root}/val/<wnid>/*.JPEG)"
        )


class Kaggle(Source):
    """A Kaggle dataset the user downloads (an account is needed): unzipped below root, or its zip in root."""

    slug = ""
    title = ""
    expected = ""

    def prepare(self, download: bool = True) -> None:
        """Use the images below root; extract a Kaggle zip found in root first if there is one."""
        if self.ready():
            return
        zips = sorted(p for p in self.root.glob("*.zip") if p.is_file()) if self.root.is_dir() else []
        for archive in zips:
            target = self.root / archive.stem
            if not target.exists():
                extract(archive, target)
        if not self.ready():
            raise DataUnavailableError(self.missing_message())

    def missing_message(self) -> str:
        """Exactly what to download and where to put it."""
        return (
            f"{self.name} ({self.title}) needs a Kaggle account: download the zip from "
            f"https://www.kaggle.com/datasets/{self.slug} and put it in {self.root} (extracted on first use) "
            f"or unzip it there{self.expected}"
        )


class Intel(Kaggle):
    """Intel Image Classification (report 003: 150 px); its seg_train / seg_test folders give the splits."""

    name = "intel"
    slug = "puneet6060/intel-image-classification"
    title = "Intel Image Classification"
    expected = " (folders seg_train/, seg_test/, seg_pred/)"


class Fruits(Kaggle):
    """Fruits-360 (report 004); its Training / Test folders give the splits."""

    name = "fruits"
    slug = "moltean/fruits"
    title = "Fruits-360"
    expected = " (folders .../Training/, .../Test/)"


class Landscapes(Kaggle):
    """Landscape classification images (report 004)."""

    name = "landscapes"
    slug = "huseynguliyev/landscape-classification"
    title = "Landscape Classification"


class Animals(Kaggle):
    """Animal images (report 004)."""

    name = "animals"
    slug = "navneetsurana/animaldataset"
    title = "Animal Dataset"


CATALOGUE: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (Samples, Synthetic, Folder, Cats, Mirflickr, ImageNet, Intel, Fruits, Landscapes, Animals)
}
"""Source classes by the name of their conf/data/<name>.yaml."""
