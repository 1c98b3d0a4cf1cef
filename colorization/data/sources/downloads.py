"""Sources fetched from the internet: one public archive each, downloaded (resumable, checked), extracted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from colorization import checks
from colorization.data.download import download as fetch
from colorization.data.download import extract
from colorization.data.sources.base import Source
from colorization.errors import DataUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    """URL, file name, checksum when one is known for sure (else only the format is checked)."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    note: str = ""


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
        self.variant = checks.choice("data.source.variant", variant, ("pets", "kaggle"))

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
