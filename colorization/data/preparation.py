"""The set-up half of LabDataModule: caches, the index, the split data, and the one-line summary.

prepare_data() makes the source ready and builds (or refreshes) the cached index; Lightning runs it on local
rank 0 of each node before setup() runs on every rank. setup() then reads the split data: for a folder, the
index assigned to splits (a DDP rank that did not prepare reads the cache that was just refreshed, without
walking the folder again); for a streaming source (shards), its manifest.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from colorization.data.index import DataIndex, build_index
from colorization.data.splits import SPLITS, FolderSplits, Splits
from colorization.data.table import PathTable
from colorization.errors import DataUnavailableError

log = logging.getLogger("colorization.data.datamodule")


class DataPreparation:
    """Mixin of LabDataModule: cache_dir, prepare_data, setup, split_data, splits, gray_dropped, summary.

    It reads the host's source, download, max_pixels, val_fraction, test_fraction, drop_gray, trainer,
    index and data, and its augmentation() for the summary.
    """

    @property
    def cache_dir(self) -> Path:
        """Cache folder of index, prior and gamut: root/.colorization, or ~/.cache when root is read-only or
        remote (shards on object storage)."""
        local = self.source.cache_root
        if local is not None:
            preferred = local / ".colorization"
            try:
                preferred.mkdir(parents=True, exist_ok=True)
                if os.access(preferred, os.W_OK):
                    return preferred
            except OSError:
                pass
        where = str(local.resolve()) if local is not None else str(self.source.location)
        digest = hashlib.sha1(where.encode()).hexdigest()[:12]
        fallback = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "colorization" / digest
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback

    def _index_cache(self) -> Path:
        """Path of the cached index of this source's image folder (one file per image root)."""
        try:
            sub = self.source.image_root.relative_to(self.source.root).as_posix()
        except ValueError:
            sub = str(self.source.image_root)
        tag = hashlib.sha1(sub.encode()).hexdigest()[:8]
        return self.cache_dir / f"index-{tag}.npz"

    def prepare_data(self) -> None:
        """Make the source ready (generate / download / check) and build or refresh the cached index.

        Lightning runs it on local rank 0 of each node, before setup() on every rank; concurrent preparers
        (nodes on one file system, parallel sweep jobs) take turns on the cache's lock.
        """
        self.source.prepare(download=self.download)
        if not self.source.streaming and self.index is None:
            self._build_index()

    def _build_index(self) -> DataIndex:
        """Build (or refresh from its cache) the index of readable images and keep it on self.index."""
        self.index = build_index(
            self.source.image_root,
            accept=self.source.accept,
            cache=self._index_cache(),
            max_pixels=self.max_pixels,
        )
        return self.index

    def _load_index(self) -> DataIndex:
        """The index for setup(): this process's, else (a DDP rank that did not prepare) the cache that the
        preparing rank has just refreshed, read as is; else built here."""
        if self.index is not None:
            return self.index
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            cached = DataIndex.load(self._index_cache(), self.source.image_root)
            if cached is not None:
                self.index = cached
                return cached
        return self._build_index()

    def setup(self, stage: str | None = None) -> None:
        """Read the split data: the folder's index (built if prepare_data ran elsewhere) assigned to splits,
        or a streaming source's manifest."""
        if self.data is not None:
            return
        if not self.source.ready():
            raise DataUnavailableError(self.source.missing_message())
        if self.source.streaming:
            self.data = self.source.splits(drop_gray=self.drop_gray)
        else:
            index = self._load_index()
            self.data = FolderSplits.from_index(
                index, self.val_fraction, self.test_fraction, self.source.use_split_folders, self.drop_gray
            )
        log.info("%s", self.summary())
        if not self.data.sizes()["train"]:
            what = self.index.skipped_report() if self.index is not None else self.data.describe()
            raise DataUnavailableError(
                f"no usable training images in {self.source!r} "
                f"({self.data.gray_dropped} gray dropped; {what})"
            )

    def split_data(self) -> Splits:
        """The split data, reading it (setup) on first use."""
        if self.data is None:
            self.setup()
        assert self.data is not None
        return self.data

    @property
    def splits(self) -> dict[str, PathTable]:
        """Image paths per split, relative to the source's image_root (folder sources; {} before setup)."""
        return self.data.paths if isinstance(self.data, FolderSplits) else {}

    @property
    def gray_dropped(self) -> int:
        """Images without chroma left out of the splits (0 before setup)."""
        return self.data.gray_dropped if self.data is not None else 0

    def summary(self) -> str:
        """One line: source, split sizes, held-out photographs, gray dropped, files skipped, augmentation."""
        sizes = self.data.sizes() if self.data is not None else {}
        parts = [" / ".join(f"{s} {sizes.get(s, 0)}" for s in SPLITS), self.source.split_note()]
        parts.append(f"{self.gray_dropped} gray dropped")
        if self.source.streaming:
            parts.append(self.data.describe() if self.data is not None else "not read")
        else:
            parts.append(self.index.skipped_report() if self.index is not None else "not indexed")
        stages = ("train", "val", "test", "predict")
        parts.append("augmentation: " + ", ".join(f"{s} {self.augmentation(s) or 'none'}" for s in stages))
        return f"{self.source!r}: " + "; ".join(p for p in parts if p)
