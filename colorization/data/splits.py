"""Which split an image belongs to, and the split data a DataModule reads (folders here, shards in streaming).

A file's split comes from its relative path alone: an explicit train/val/test folder, else a hash of the path,
so it keeps its split when other files are added or removed, and the shard writer fixes the same split per
sample. `Splits` is what LabDataModule asks of a source's data, whatever its layout: sizes, datasets, loaders
and the identity of the training split (the key of the cached prior). `FolderSplits` is the indexed-folder
kind: each split a row selection of the index's flat path table (colorization.data.table).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from colorization.data.loading import ImageDataset
from colorization.data.table import PathTable

if TYPE_CHECKING:
    from colorization.data.index import DataIndex

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "seg_train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
    "seg_test": "test",
}
"""Folder names (case-insensitive) that put every file below them into a split."""


def path_fraction(rel: str) -> float:
    """A stable number in [0, 1) from a relative path (first 8 bytes of its SHA-1)."""
    return int.from_bytes(hashlib.sha1(rel.encode("utf-8")).digest()[:8], "big") / 2.0**64


def folder_split(rel: str) -> str | None:
    """The split named by a folder in rel (train/val/test and their usual spellings), or None."""
    for part in rel.split("/")[:-1]:
        split = SPLIT_FOLDERS.get(part.lower())
        if split is not None:
            return split
    return None


def assign_split(
    rel: str, val_fraction: float, test_fraction: float, use_folders: bool = True, carve_val: bool = True
) -> str:
    """The split of one file: its split folder when present (val carved from train by hash unless the source
    has a val folder), else by hash of the path."""
    u = path_fraction(rel)
    named = folder_split(rel) if use_folders else None
    if named == "train":
        return "val" if carve_val and u < val_fraction else "train"
    if named is not None:
        return named
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


@dataclass(frozen=True)
class LoaderSpec:
    """How LabDataModule wants one split served: crops, batches, workers, and which DDP rank asks."""

    image_size: int
    batch_size: int
    num_workers: int
    crop_scale: tuple[float, float] | None = None
    shuffle: bool = False
    drop_last: bool = False
    seed: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    rank: int = 0
    world_size: int = 1


class Splits:
    """The split data of one source: what LabDataModule reads, whatever the layout (folder or shards)."""

    gray_dropped: int = 0

    def sizes(self) -> dict[str, int]:
        """Usable images per split."""
        raise NotImplementedError

    def dataset(self, split: str, spec: LoaderSpec) -> Dataset:
        """The uint8 dataset of one split (for one rank)."""
        raise NotImplementedError

    def loader(self, split: str, spec: LoaderSpec) -> DataLoader:
        """A DataLoader of one split (for one rank)."""
        raise NotImplementedError

    def train_key(self) -> str:
        """A digest of the training split's contents: the cache key of its prior and gamut."""
        raise NotImplementedError

    def statistics_batches(
        self, spec: LoaderSpec, max_images: int | None
    ) -> tuple[int, Iterator[torch.Tensor]]:
        """(image count, uint8 RGB batches) of centre crops of the whole training split, or of a stable
        sample of max_images; read by one process (rank 0), never split between ranks."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the split data is, for the DataModule's log line ("" when nothing to add)."""
        return ""


@dataclass
class FolderSplits(Splits):
    """Splits of an indexed folder: per split, a row selection of the index's path table."""

    root: Path
    paths: dict[str, PathTable] = field(default_factory=dict)
    gray_dropped: int = 0

    @classmethod
    def from_index(
        cls, index: DataIndex, val_fraction: float, test_fraction: float, use_folders: bool, drop_gray: bool
    ) -> FolderSplits:
        """Assign each image of index to its split (gray ones left out when drop_gray)."""
        table = index.paths
        carve_val = not (use_folders and any(folder_split(p) == "val" for p in table))
        rows: dict[str, list[int]] = {s: [] for s in SPLITS}
        gray = index.gray
        for i, rel in enumerate(table):
            if drop_gray and gray[i]:
                continue
            rows[assign_split(rel, val_fraction, test_fraction, use_folders, carve_val)].append(i)
        dropped = int(gray.sum()) if drop_gray else 0
        paths = {s: table.take(np.asarray(r, np.int64)) for s, r in rows.items()}
        return cls(index.root, paths, dropped)

    def sizes(self) -> dict[str, int]:
        """Images per split."""
        return {s: len(self.paths.get(s, ())) for s in SPLITS}

    def dataset(self, split: str, spec: LoaderSpec) -> ImageDataset:
        """Files of one split decoded to uint8 crops (random resized when spec.crop_scale)."""
        return ImageDataset(self.root, self.paths[split], spec.image_size, spec.crop_scale)

    def loader(self, split: str, spec: LoaderSpec) -> DataLoader:
        """A map-style loader (Lightning adds its DistributedSampler under DDP); seeded shuffling."""
        data = self.dataset(split, spec)
        return DataLoader(
            data,
            batch_size=spec.batch_size,
            shuffle=spec.shuffle,
            num_workers=spec.num_workers,
            pin_memory=spec.pin_memory,
            persistent_workers=spec.persistent_workers,
            drop_last=spec.drop_last and len(data) > spec.batch_size,
            generator=torch.Generator().manual_seed(spec.seed),
        )

    def train_key(self) -> str:
        """SHA-1 of the training split's paths."""
        return self.paths["train"].digest()

    def statistics_batches(
        self, spec: LoaderSpec, max_images: int | None
    ) -> tuple[int, Iterator[torch.Tensor]]:
        """Centre crops of the training images, or the max_images first in the order of their path's hash."""
        paths: PathTable | list[str] = self.paths["train"]
        if max_images is not None:
            paths = sorted(paths, key=_stable_key)[:max_images]
        data = ImageDataset(self.root, paths, spec.image_size)
        loader = DataLoader(data, batch_size=spec.batch_size, num_workers=spec.num_workers)
        return len(data), (batch["rgb"] for batch in loader)


def _stable_key(rel: str) -> str:
    """Order images by a hash of their path, so a prior over the first N is a fair, stable sample."""
    return hashlib.sha1(rel.encode()).hexdigest()
