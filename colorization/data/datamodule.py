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

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from colorization import checks
from colorization.color import lab_batch
from colorization.data import options
from colorization.data.augmentation import Augmentation, plain_spec
from colorization.data.images import DEFAULT_MAX_PIXELS
from colorization.data.index import DataIndex
from colorization.data.loading import cpu_threads
from colorization.data.preparation import DataPreparation
from colorization.data.sources import Source
from colorization.data.splits import SPLITS, LoaderSpec, Splits
from colorization.data.statistics import TrainingStatistics
from colorization.errors import DataUnavailableError

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")
"""The trainer's stages, each with its augmentation (validation also serves the sanity check)."""
AUG_KEYS = ("aug", *(f"{stage}_aug" for stage in STAGES))
"""The augmentation keys: the shared fallback `aug`, then one per stage."""
DEFAULT_TRAIN_AUG = ({"RandomHorizontalFlip": {"p": 0.5}},)
"""The training augmentation when none is configured (conf/data/base/lab.yaml says the same)."""


class LabDataModule(DataPreparation, TrainingStatistics, LightningDataModule):
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
        self.source = options.make_source(source, root, source_options)
        self.image_size = checks.integer("data.image_size", values["image_size"], low=8)
        self.batch_size = checks.integer("data.batch_size", values["batch_size"], low=1)
        workers = checks.integer("data.num_workers", values["num_workers"], low=0, optional=True)
        self.num_workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.val_fraction, self.test_fraction = options.fractions(
            values["val_fraction"], values["test_fraction"]
        )
        self.seed = checks.integer("data.seed", values["seed"])
        self.augment = checks.flag("data.augment", values["augment"])
        self.crop_scale = options.crop_scale(values["crop_scale"])
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
        self.save_hyperparameters({"root": self.source.location, **values, **source_options})
        self.index: DataIndex | None = None
        self.data: Splits | None = None

    # ------------------------------------------------------------ dataloaders
    def loader_spec(
        self, split: str, shuffle: bool = False, drop_last: bool = False, random_crop: bool | None = None
    ) -> LoaderSpec:
        """How one split is served: random resized crops for train when augment (else centre crops), batch
        size, workers, seeded shuffling, and the asking DDP rank (from the trainer, when there is one)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        crop = (split == "train" and self.augment) if random_crop is None else random_crop
        trainer = getattr(self, "trainer", None)
        return LoaderSpec(
            image_size=self.image_size,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            crop_scale=self.crop_scale if crop else None,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=self.seed,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def dataset(self, split: str, random_crop: bool | None = None) -> Dataset:
        """The uint8 dataset of one split (random resized crops for train when augment, else centre crops)."""
        spec = self.loader_spec(split, random_crop=random_crop)
        return self.split_data().dataset(split, spec)

    def _loader(
        self, split: str, shuffle: bool, drop_last: bool = False, random_crop: bool | None = None
    ) -> DataLoader:
        """A DataLoader of one split (test falls back to val when empty); seeded shuffling."""
        sizes = self.split_data().sizes()
        if sizes[split] == 0 and split == "test" and sizes["val"]:
            log.warning("%r has no test images (no test split): testing on val", self.source)
            split = "val"
        if sizes[split] == 0:
            hint = "add training images" if split == "train" else f"raise data.{split}_fraction"
            raise DataUnavailableError(f"the {split} split of {self.source!r} is empty; {hint}")
        return self.split_data().loader(split, self.loader_spec(split, shuffle, drop_last, random_crop))

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
