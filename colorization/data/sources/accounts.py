"""Sources behind an account (ImageNet, Kaggle): never downloaded; the user puts the files or zip in root."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from colorization import checks
from colorization.data.download import extract
from colorization.data.sources.base import Source
from colorization.errors import DataUnavailableError


class ImageNet(Source):
    """A folder in ImageNet layout (root/train/<wnid>/*.JPEG, optional root/val/<wnid>/), any class subset."""

    name = "imagenet"

    def __init__(self, root: str | Path, classes: list[str] | int | None = None) -> None:
        """classes: None for all, a list of class folders (wnids), or N for the first N in sorted order."""
        super().__init__(root)
        if isinstance(classes, Sequence) and not isinstance(classes, str):
            classes = [str(c) for c in classes]
        elif classes is not None and (
            isinstance(classes, bool) or not isinstance(classes, int) or classes < 1
        ):
            allowed = "null, a list of class folders (wnids) or an integer >= 1 (the first N in sorted order)"
            raise checks.out_of_range("data.classes", classes, allowed)
        self.classes: list[str] | int | None = classes
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
