"""LabDataModule: uint8 crops from PIL workers, then augmentation and Lab conversion on the device.

Workers only decode, resize and crop (cheap uint8 bytes cross the process boundary); nothing about colour
happens there. `on_after_batch_transfer` turns `{"rgb": uint8 B×3×H×W, "index": B}` into
`{"L": B×1×H×W, "ab": B×2×H×W, "rgb": B×3×H×W, "index": B}` (L and ab normalised by colorization.color),
after the augmentation of the trainer's stage (torchgeo's pattern: train_aug, val_aug, test_aug, predict_aug,
each falling back to aug; see colorization.data.augmentation). The random resized crop of training happens in
the workers, on the decoded file: it costs what the resize costs anyway, and resampling only once keeps detail
that a second crop-and-resize on the device would blur.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from colorization import checks
from colorization.color import lab_batch
from colorization.data.augmentation import Augmentation, plain_spec
from colorization.data.images import DEFAULT_MAX_PIXELS
from colorization.data.index import SPLITS, DataIndex, assign_split, build_index, folder_split
from colorization.data.loading import ImageDataset, cpu_threads
from colorization.data.sources import CATALOGUE, Source
from colorization.data.statistics import TrainingStatistics
from colorization.errors import ConfigError, DataUnavailableError

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")
"""The trainer's stages, each with its augmentation (validation also serves the sanity check)."""
AUG_KEYS = ("aug", *(f"{stage}_aug" for stage in STAGES))
"""The augmentation keys: the shared fallback `aug`, then one per stage."""
DEFAULT_TRAIN_AUG = ({"RandomHorizontalFlip": {"p": 0.5}},)
"""The training augmentation when none is configured (conf/data/base/lab.yaml says the same)."""


def _make_source(source: Any, root: str | Path | None, options: dict[str, Any]) -> Source:
    """A Source from an instance, a catalogue name, or a factory called with root (e.g. a Hydra partial)."""
    if isinstance(source, Source):
        if options:
            raise ConfigError(
                f"data.source: options {sorted(options)} given with an already built source {source!r}; "
                "allowed values: no options (pass them to the source's constructor)"
            )
        return source
    if isinstance(source, str):
        if source not in CATALOGUE:
            raise ConfigError(
                f"data.source={source!r} is an unknown data source; "
                f"allowed values: {', '.join(sorted(CATALOGUE))}"
            )
        source = CATALOGUE[source]
    if not callable(source):
        raise ConfigError(
            f"data.source is a {type(source).__name__}; allowed values: a source, a source name or a factory"
        )
    if root is None:
        raise ConfigError("data.root is required: the folder that holds (or will hold) the images")
    try:
        built = source(root=root, **options)
    except TypeError as exc:
        raise ConfigError(
            f"data.source: bad data source options {sorted(options)} ({exc}); allowed values: "
            f"the keyword arguments of {getattr(source, '__name__', source)!s}"
        ) from None
    if not isinstance(built, Source):
        raise ConfigError(
            f"data.source built a {type(built).__name__}; allowed values: a factory of a "
            "colorization.data.sources.Source"
        )
    return built


class LabDataModule(TrainingStatistics, LightningDataModule):
    """A LightningDataModule over one source: indexed once, split by path, Lab batches on the device."""

    def __init__(
        self,
        source: Source | str | Callable[..., Source],
        root: str | Path | None = None,
        image_size: int = 224,
        batch_size: int = 32,
        num_workers: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        augment: bool = True,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        aug: Sequence[Any] | None = None,
        train_aug: Sequence[Any] | None = DEFAULT_TRAIN_AUG,
        val_aug: Sequence[Any] | None = None,
        test_aug: Sequence[Any] | None = None,
        predict_aug: Sequence[Any] | None = None,
        test_split: str = "test",
        drop_gray: bool = True,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        prior_max_images: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        download: bool = True,
        **source_options: Any,
    ) -> None:
        """Build the source (extra keyword options go to it, e.g. classes=...) and check every value once.

        seed drives the shuffling and random crops of the training loader only; splits depend on file
        paths alone. augment: random resized crops (area share crop_scale, in the workers) and the train
        split's device augmentation; false gives the training split centre crops and no augmentation.
        aug, train_aug, val_aug, test_aug, predict_aug: Kornia augmentation specs
        (colorization.data.augmentation) applied on the device by the trainer's stage (training, validating or
        sanity checking, testing, predicting); None falls back to aug, [] is none. test_split: the split
        test_dataloader() and predict_dataloader() serve (evaluate.py's split), always as centre crops in
        order. drop_gray leaves images without chroma out of every split (Zhang et al. mask them; in
        evaluation they would reward gray predictions). pin_memory defaults to CUDA availability;
        persistent_workers to num_workers > 0 (never on with 0 workers). prior_max_images: None (default)
        computes the prior and gamut over every training image, streamed; N takes a deterministic sample of N.
        Every argument but the source itself is saved as hyperparameters (augmentations as their specs;
        plain Python values: the app converts Hydra's nodes), so each checkpoint carries
        ``datamodule_hyper_parameters`` (image_size etc.) for the inference tools.
        """
        super().__init__()
        values = {
            "image_size": image_size,
            "batch_size": batch_size,
            "num_workers": num_workers,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "seed": seed,
            "augment": augment,
            "crop_scale": crop_scale,
            **dict(zip(AUG_KEYS, (aug, train_aug, val_aug, test_aug, predict_aug), strict=True)),
            "test_split": test_split,
            "drop_gray": drop_gray,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers,
            "prior_max_images": prior_max_images,
            "max_pixels": max_pixels,
            "download": download,
        }
        self.source = _make_source(source, root, source_options)
        self.image_size = checks.integer("data.image_size", values["image_size"], low=8)
        self.batch_size = checks.integer("data.batch_size", values["batch_size"], low=1)
        workers = checks.integer("data.num_workers", values["num_workers"], low=0, optional=True)
        self.num_workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.val_fraction, self.test_fraction = _fractions(values["val_fraction"], values["test_fraction"])
        self.seed = checks.integer("data.seed", values["seed"])
        self.augment = checks.flag("data.augment", values["augment"])
        self.crop_scale = _crop_scale(values["crop_scale"])
        specs = {key: plain_spec(values[key], f"data.{key}") for key in AUG_KEYS}
        values.update(specs)
        shared = Augmentation(specs["aug"] or [], "data.aug")
        self.augmentations: dict[str, Augmentation] = {
            split: shared
            if specs[f"{split}_aug"] is None
            else Augmentation(specs[f"{split}_aug"], f"data.{split}_aug")
            for split in STAGES
        }
        self.test_split = checks.choice("data.test_split", values["test_split"], SPLITS)
        self.drop_gray = checks.flag("data.drop_gray", values["drop_gray"])
        pin = checks.flag("data.pin_memory", values["pin_memory"], optional=True)
        self.pin_memory = torch.cuda.is_available() if pin is None else pin
        persistent = checks.flag("data.persistent_workers", values["persistent_workers"], optional=True)
        self.persistent_workers = self.num_workers > 0 and persistent is not False
        self.prior_max_images = checks.integer(
            "data.prior_max_images", values["prior_max_images"], low=1, optional=True
        )
        self.max_pixels = checks.integer("data.max_pixels", values["max_pixels"], low=1)
        self.download = checks.flag("data.download", values["download"])
        # resolved root, also when a built source was passed; source options as given (plain values)
        self.save_hyperparameters({"root": str(self.source.root), **values, **source_options})
        self.index: DataIndex | None = None
        self.splits: dict[str, list[str]] = {}
        self.gray_dropped = 0

    # ------------------------------------------------------------------ set-up
    @property
    def cache_dir(self) -> Path:
        """Cache folder of index, prior and gamut: root/.colorization, or ~/.cache when root is read-only."""
        preferred = self.source.root / ".colorization"
        try:
            preferred.mkdir(parents=True, exist_ok=True)
            if os.access(preferred, os.W_OK):
                return preferred
        except OSError:
            pass
        digest = hashlib.sha1(str(self.source.root.resolve()).encode()).hexdigest()[:12]
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
        return self.cache_dir / f"index-{tag}.json"

    def prepare_data(self) -> None:
        """Make the source ready (generate / download / check) and build or refresh the cached index."""
        self.source.prepare(download=self.download)
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

    def setup(self, stage: str | None = None) -> None:
        """Load the index (building it if prepare_data ran elsewhere) and assign every image to its split."""
        if self.splits:
            return
        if not self.source.ready():
            raise DataUnavailableError(self.source.missing_message())
        index = self.index or self._build_index()
        folders = self.source.use_split_folders
        carve_val = not (folders and any(folder_split(e.path) == "val" for e in index.entries))
        splits: dict[str, list[str]] = {s: [] for s in SPLITS}
        gray = 0
        for entry in index.entries:
            if entry.gray and self.drop_gray:
                gray += 1
                continue
            split = assign_split(entry.path, self.val_fraction, self.test_fraction, folders, carve_val)
            splits[split].append(entry.path)
        self.splits, self.gray_dropped = splits, gray
        log.info("%s", self.summary())
        if not splits["train"]:
            raise DataUnavailableError(
                f"no usable training images under {self.source.image_root} "
                f"({len(index)} readable, {gray} gray dropped; {index.skipped_report()})"
            )

    def summary(self) -> str:
        """One line: source, split sizes, held-out photographs, gray dropped, files skipped, augmentation."""
        parts = [" / ".join(f"{s} {len(self.splits.get(s, []))}" for s in SPLITS), self.source.split_note()]
        parts.append(f"{self.gray_dropped} gray dropped")
        parts.append(self.index.skipped_report() if self.index is not None else "not indexed")
        parts.append("augmentation: " + ", ".join(f"{s} {self.augmentation(s) or 'none'}" for s in STAGES))
        return f"{self.source!r}: " + "; ".join(p for p in parts if p)

    # ------------------------------------------------------------ dataloaders
    def dataset(self, split: str, random_crop: bool | None = None) -> ImageDataset:
        """The uint8 dataset of one split (random resized crops for train when augment, else centre crops)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not self.splits:
            self.setup()
        crop = (split == "train" and self.augment) if random_crop is None else random_crop
        scale = self.crop_scale if crop else None
        return ImageDataset(self.source.image_root, self.splits[split], self.image_size, scale)

    def _loader(
        self, split: str, shuffle: bool, drop_last: bool = False, random_crop: bool | None = None
    ) -> DataLoader:
        """A DataLoader of one split (test falls back to val when empty); seeded shuffling."""
        data = self.dataset(split, random_crop)
        if len(data) == 0 and split == "test" and self.splits["val"]:
            log.warning("%r has no test images (no test split): testing on val", self.source)
            data = self.dataset("val", random_crop)
        if len(data) == 0:
            hint = "add training images" if split == "train" else f"raise data.{split}_fraction"
            raise DataUnavailableError(f"the {split} split of {self.source!r} is empty; {hint}")
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=drop_last and len(data) > self.batch_size,
            generator=generator,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled random crops of the training split (a last partial batch is dropped)."""
        return self._loader("train", shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        """Centre crops of the validation split."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Centre crops of the split named by test_split ("test" unless chosen otherwise), in order."""
        return self._loader(self.test_split, shuffle=False, random_crop=False)

    def predict_dataloader(self) -> DataLoader:
        """Centre crops of the split named by test_split, in order, for Trainer.predict."""
        return self._loader(self.test_split, shuffle=False, random_crop=False)

    # ------------------------------------------------------------- on device
    def augmentation(self, stage: str | None) -> Augmentation | None:
        """The augmentation of a stage (train, val, test, predict); None when there is none to run.

        Training's is off with augment=false; no stage (no trainer, or one that is not running) has none.
        """
        if stage is None or (stage == "train" and not self.augment):
            return None
        if stage not in self.augmentations:
            raise ValueError(f"stage must be one of {', '.join(STAGES)} or None, got {stage!r}")
        aug = self.augmentations[stage]
        return aug if aug else None

    def to_lab(self, batch: dict[str, Any], stage: str | None = None) -> dict[str, Any]:
        """{"rgb": uint8} -> {"L", "ab", "rgb"} (normalised, float), after the stage's augmentation if any."""
        rgb = batch["rgb"]
        aug = self.augmentation(stage)
        with cpu_threads(self.num_workers, rgb.device):
            if aug is not None:
                rgb = aug(rgb)  # uint8 when only geometric steps ran, float RGB in [0, 1] otherwise
            L, ab = lab_batch(rgb, check=False)  # uint8: the colour core's lookup-table path, the cheapest
            rgb = torch.div(rgb, 255.0) if rgb.dtype == torch.uint8 else rgb.float()
        out = {k: v for k, v in batch.items() if k != "rgb"}
        out.update(L=L, ab=ab, rgb=rgb)
        return out

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning hook: Lab conversion on the device, after the augmentation of the trainer's stage."""
        if isinstance(batch, dict) and "rgb" in batch and "L" not in batch:
            return self.to_lab(batch, _stage(self.trainer))
        return batch


def _stage(trainer: Any) -> str | None:
    """The stage a trainer runs: train, val (validation and its sanity check), test, predict; else None."""
    if trainer is None:
        return None
    if trainer.training:
        return "train"
    if trainer.validating or trainer.sanity_checking:
        return "val"
    if trainer.testing:
        return "test"
    if trainer.predicting:
        return "predict"
    return None


def _fractions(val_fraction: Any, test_fraction: Any) -> tuple[float, float]:
    """data.val_fraction and data.test_fraction: each in [0, 1), their sum below 1."""
    allowed = "a number in [0, 1); data.val_fraction + data.test_fraction < 1"
    val = checks.number("data.val_fraction", val_fraction, allowed)
    test = checks.number("data.test_fraction", test_fraction, allowed)
    for key, value in (("data.val_fraction", val), ("data.test_fraction", test)):
        if not 0 <= value < 1:
            raise checks.out_of_range(key, value, allowed)
    if not val + test < 1:
        raise checks.out_of_range("data.val_fraction + data.test_fraction", val + test, allowed)
    return val, test


def _crop_scale(crop_scale: Any) -> tuple[float, float]:
    """data.crop_scale: [min, max] area shares of the random resized crop, 0 < min <= max <= 1."""
    allowed = "[min, max] with 0 < min <= max <= 1"
    if not isinstance(crop_scale, list | tuple) or len(crop_scale) != 2:
        raise checks.out_of_range("data.crop_scale", crop_scale, allowed)
    lo, hi = (checks.number("data.crop_scale", v, allowed) for v in crop_scale)
    if not 0 < lo <= hi <= 1:
        raise checks.out_of_range("data.crop_scale", list(crop_scale), allowed)
    return lo, hi
