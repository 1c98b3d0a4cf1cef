"""The base of every source: a root folder of images, what the index walks, and what to do when it is empty.

A source owns a root folder. `prepare()` makes its images exist below `image_root` (generate, download and
extract, or check that the user put them there) and raises DataUnavailableError with one line saying what to
do otherwise. `accept(rel)` filters files (e.g. cats among the Oxford-IIIT pets); `use_split_folders` says
whether train/val/test folder names decide the split. A source checks its own options in its constructor
(colorization.data.checks), naming them by their config keys (data.source.count, data.classes...).
"""

from __future__ import annotations

import os
from pathlib import Path

from colorization.data.images import is_image_file
from colorization.errors import DataUnavailableError


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
    streaming = False
    """False: a folder the DataModule indexes; True: the source serves its own splits (see Shards)."""

    def __init__(self, root: str | Path) -> None:
        """Remember the root folder (nothing is touched until prepare())."""
        self.root = Path(root).expanduser()

    @property
    def image_root(self) -> Path:
        """The folder the index walks; relative paths in the index are relative to it."""
        return self.root

    @property
    def location(self) -> str:
        """Where the data is, as the user named it (a folder, or a URL for a remote source)."""
        return str(self.root)

    @property
    def cache_root(self) -> Path | None:
        """The local folder whose .colorization/ holds the caches (None: caches under ~/.cache)."""
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

    def split_note(self) -> str:
        """What the source holds out for val and test, for the DataModule's log line ("" when nothing)."""
        return ""

    def __repr__(self) -> str:
        """Class name and root, for logs."""
        return f"{type(self).__name__}(root={str(self.root)!r})"


class Folder(Source):
    """Any directory of images, searched recursively; train/val/test sub-folders are used when present."""

    name = "folder"

    def missing_message(self) -> str:
        """Tell the user to point data.root at their folder."""
        return f"no images found under {self.root}: pass data.root=DIR (searched recursively)"
