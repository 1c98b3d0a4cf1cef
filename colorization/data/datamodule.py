"""LabDataModule: uint8 crops from PIL workers, then augmentation and Lab conversion on the device.

Workers only decode, resize and crop (cheap uint8 bytes cross the process boundary); nothing about colour
happens there. `on_after_batch_transfer` turns `{"rgb": uint8 B×3×H×W, "index": B}` into
`{"L": B×1×H×W, "ab": B×2×H×W, "rgb": B×3×H×W, "index": B}` (L and ab normalised by colorization.color),
with a random resized crop in the workers and Kornia's horizontal flip on the device when training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from colorization.color import ABGamut, ColorPrior, denormalize_ab, lab_batch
from colorization.data.images import DEFAULT_MAX_PIXELS, load_random_crop, load_square
from colorization.data.index import SPLITS, DataIndex, assign_split, build_index, folder_split
from colorization.data.sources import CATALOGUE, Source
from colorization.errors import ConfigError, DataUnavailableError

log = logging.getLogger(__name__)


@contextmanager
def _cpu_threads(num_workers: int, device: torch.device) -> Iterator[None]:
    """On the CPU, run the main process's batch conversion on the cores that the loader workers leave free.

    With workers busy on every core, torch's thread pool in the main process waits on preempted threads:
    measured on 2 cores with 2 workers, the pipeline ran at 0.07x of a bare decode with 2 threads and 0.6x
    with 1 (benchmarks/datamodule.py). The previous thread count is restored on exit.
    """
    before = torch.get_num_threads()
    free = max(1, _cpu_count() - num_workers)
    if device.type != "cpu" or num_workers == 0 or free >= before:
        yield
        return
    torch.set_num_threads(free)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ImageDataset(Dataset):
    """Files under root decoded to uint8 size×size crops: random resized (crop_scale) or centred."""

    def __init__(
        self, root: Path, paths: list[str], size: int, crop_scale: tuple[float, float] | None = None
    ) -> None:
        """root: indexed folder; paths: POSIX, relative to it; crop_scale: (min, max) area of random crops."""
        self.root, self.paths, self.size, self.crop_scale = Path(root), list(paths), int(size), crop_scale

    def __len__(self) -> int:
        """Number of images."""
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """{"rgb": uint8 3×size×size, "index": i}; random crops draw from torch's per-worker RNG."""
        path = self.root / self.paths[i]
        if self.crop_scale is None:
            arr = load_square(path, self.size)
        else:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            arr = load_random_crop(path, self.size, rng, self.crop_scale)
        return {"rgb": torch.from_numpy(arr).permute(2, 0, 1).contiguous(), "index": i}


def _make_source(source: Any, root: str | Path | None, options: dict[str, Any]) -> Source:
    """A Source from an instance, a catalogue name, or a factory called with root (e.g. a Hydra partial)."""
    if isinstance(source, Source):
        if options:
            raise ConfigError(f"options {sorted(options)} given with an already built source {source!r}")
        return source
    if isinstance(source, str):
        if source not in CATALOGUE:
            raise ConfigError(f"unknown data source {source!r}; choose one of {', '.join(sorted(CATALOGUE))}")
        source = CATALOGUE[source]
    if not callable(source):
        raise ConfigError(
            f"data.source must be a source, a source name or a factory, got {type(source).__name__}"
        )
    if root is None:
        raise ConfigError("data.root is required: the folder that holds (or will hold) the images")
    try:
        built = source(root=root, **options)
    except TypeError as exc:
        raise ConfigError(f"bad data source options {sorted(options)}: {exc}") from None
    if not isinstance(built, Source):
        raise ConfigError(
            f"data.source built a {type(built).__name__}, not a colorization.data.sources.Source"
        )
    return built


class LabDataModule(LightningDataModule):
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
        drop_gray: bool = True,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        prior_max_images: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        download: bool = True,
        **source_options: Any,
    ) -> None:
        """Build the source (extra keyword options go to it, e.g. classes=...); nothing is read yet.

        seed drives the shuffling and random crops of the training loader only; splits depend on file
        paths alone. augment: random resized crops (area share crop_scale, in the workers) and horizontal
        flips (Kornia, on the device) for the training split. drop_gray leaves images without chroma out of
        every split (Zhang et al. mask them; in evaluation they would reward gray predictions). pin_memory
        defaults to CUDA availability; persistent_workers to num_workers > 0 (never on with 0 workers).
        prior_max_images: None (default) computes the prior and gamut over every training image, streamed;
        N takes a deterministic sample of N. Every argument but the source itself is saved as hyperparameters,
        so each checkpoint carries ``datamodule_hyper_parameters`` (image_size etc.) for the inference tools.
        """
        super().__init__()
        self.source = _make_source(source, root, source_options)
        hparams = {
            "root": str(self.source.root),  # resolved, also when a built source was passed
            "image_size": image_size,
            "batch_size": batch_size,
            "num_workers": num_workers,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "seed": seed,
            "augment": augment,
            "crop_scale": crop_scale,
            "drop_gray": drop_gray,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers,
            "prior_max_images": prior_max_images,
            "max_pixels": max_pixels,
            "download": download,
            **source_options,
        }
        self.save_hyperparameters(_plain_values(hparams))
        if image_size < 8:
            raise ConfigError(f"data.image_size must be >= 8, got {image_size}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                f"data.val_fraction and data.test_fraction must be in [0, 1) with sum < 1, "
                f"got {val_fraction} and {test_fraction}"
            )
        lo, hi = (float(v) for v in crop_scale)
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"data.crop_scale must satisfy 0 < min <= max <= 1, got {list(crop_scale)}")
        self.image_size, self.batch_size = int(image_size), int(batch_size)
        self.num_workers = min(4, os.cpu_count() or 1) if num_workers is None else int(num_workers)
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}")
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)
        self.seed, self.augment, self.crop_scale = int(seed), bool(augment), (lo, hi)
        self.drop_gray = bool(drop_gray)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.persistent_workers = (
            (self.num_workers > 0) if persistent_workers is None else bool(persistent_workers)
        )
        self.persistent_workers = self.persistent_workers and self.num_workers > 0
        self.prior_max_images = prior_max_images
        self.max_pixels, self.download = int(max_pixels), bool(download)
        self.index: DataIndex | None = None
        self.splits: dict[str, list[str]] = {}
        self.gray_dropped = 0
        self._augmenter: torch.nn.Module | None = None

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
        """One line: source, split sizes, gray images dropped, files skipped."""
        sizes = " / ".join(f"{s} {len(self.splits.get(s, []))}" for s in SPLITS)
        skipped = self.index.skipped_report() if self.index is not None else "not indexed"
        return f"{self.source!r}: {sizes}; {self.gray_dropped} gray dropped; {skipped}"

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
            raise DataUnavailableError(
                f"the {split} split of {self.source!r} is empty; raise data.{split}_fraction"
            )
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
        """Centre crops of the test split."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Centre crops of the test split, for Trainer.predict."""
        return self._loader("test", shuffle=False)

    # ------------------------------------------------------------- on device
    @property
    def augmenter(self) -> torch.nn.Module:
        """Kornia's random horizontal flip (no parameters, so any device works).

        The random resized crop happens in the workers, on the decoded file: it costs what the resize costs
        anyway, and resampling only once keeps detail that a second crop-and-resize on the device would blur.
        """
        if self._augmenter is None:
            import kornia.augmentation as K

            self._augmenter = K.RandomHorizontalFlip()
        return self._augmenter

    def _augment(self, rgb: torch.Tensor) -> torch.Tensor:
        """The augmenter on a uint8 or float batch: Kornia's flip on uint8 bytes when it is a plain flip.

        Kornia's augmentations take float images; for its horizontal flip, the draw (which images) comes from
        Kornia and the bytes are flipped before the conversion, a quarter of the memory traffic of flipping
        the float image and then L and ab. Any other augmenter gets the float image.
        """
        import kornia.augmentation as K

        aug = self.augmenter
        if rgb.dtype == torch.uint8 and type(aug) is K.RandomHorizontalFlip:
            flip = aug.forward_parameters(rgb.shape)["batch_prob"].to(rgb.device) > 0.5
            return torch.where(flip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
        return aug(torch.div(rgb, 255.0) if rgb.dtype == torch.uint8 else rgb.float())

    def to_lab(self, batch: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """{"rgb": uint8} -> {"L", "ab", "rgb"} (normalised, float); augments first when train and augment."""
        rgb = batch["rgb"]
        with _cpu_threads(self.num_workers, rgb.device):
            if train and self.augment:
                rgb = self._augment(rgb)
            L, ab = lab_batch(rgb, check=False)  # uint8: the colour core's lookup-table path, the cheapest
            rgb = torch.div(rgb, 255.0) if rgb.dtype == torch.uint8 else rgb.float()
        out = {k: v for k, v in batch.items() if k != "rgb"}
        out.update(L=L, ab=ab, rgb=rgb)
        return out

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning hook: Lab conversion on the device, with augmentation while the trainer is training."""
        if isinstance(batch, dict) and "rgb" in batch and "L" not in batch:
            trainer = getattr(self, "trainer", None)
            return self.to_lab(batch, train=bool(trainer is not None and trainer.training))
        return batch

    # ------------------------------------------------------- prior and gamut
    def _train_batches(self, what: str, device: torch.device | str | None = None) -> Iterator[torch.Tensor]:
        """ab (Lab units) of centre crops of all training images (or prior_max_images), with progress bar."""
        from rich.progress import Progress

        paths = self.splits["train"] if self.splits else self.dataset("train").paths
        if self.prior_max_images is not None:
            paths = sorted(paths, key=_stable_key)[: self.prior_max_images]
        data = ImageDataset(self.source.image_root, paths, self.image_size)
        loader = DataLoader(data, batch_size=self.batch_size, num_workers=self.num_workers)
        with Progress(transient=True) as bar:
            task = bar.add_task(f"{what} over {len(data)} training images", total=len(data))
            for batch in loader:
                rgb = batch["rgb"].to(device) if device is not None else batch["rgb"]
                with _cpu_threads(self.num_workers, rgb.device):
                    _, ab_n = lab_batch(rgb, check=False)  # uint8: the lookup-table path
                bar.advance(task, len(rgb))
                yield denormalize_ab(ab_n)

    def _cache_key(self, kind: str, extra: bytes = b"") -> Path:
        """Cache path of a prior or gamut, keyed by training split, image size, sample size and `extra`."""
        if not self.splits:
            self.setup()
        h = hashlib.sha1()
        h.update(json.dumps([self.splits["train"], self.image_size, self.prior_max_images]).encode())
        h.update(extra)
        return self.cache_dir / f"{kind}-{h.hexdigest()[:16]}.pt"

    def compute_prior(self, gamut: ABGamut, device: torch.device | str | None = None) -> ColorPrior:
        """The empirical ab prior of the training split over gamut's bins: computed once, cached, reused."""
        path = self._cache_key("prior", gamut.points.detach().cpu().numpy().tobytes())
        if path.is_file():
            try:
                return ColorPrior.load(path)
            except ValueError as exc:
                log.warning("ignoring a bad cached prior %s (%s)", path, exc)
        prior = ColorPrior(gamut.to("cpu"))
        for ab in self._train_batches("prior", device):
            prior.update(ab)  # nearest bins on ab's device; only the bin counts come back to the host
        prior.finalize()
        try:
            prior.save(path)
        except OSError as exc:
            log.warning("could not cache the prior at %s (%s)", path, exc)
        return prior

    def compute_gamut(self, min_count: int = 1, device: torch.device | str | None = None) -> ABGamut:
        """The ab bins (grid 10) reached >= min_count times by the training split: computed once, cached."""
        path = self._cache_key("gamut", str(min_count).encode())
        if path.is_file():
            try:
                return ABGamut(torch.load(path, map_location="cpu", weights_only=True))
            except Exception as exc:  # noqa: BLE001 - a corrupt cache is recomputed
                log.warning("ignoring a bad cached gamut %s (%s)", path, exc)
        gamut = ABGamut.from_ab(self._train_batches("gamut", device), min_count=min_count)
        try:
            torch.save(gamut.points.cpu(), path)
        except OSError as exc:
            log.warning("could not cache the gamut at %s (%s)", path, exc)
        return gamut


def _plain_values(values: dict[str, Any]) -> dict[str, Any]:
    """Hydra's ListConfig/DictConfig values as plain lists and dicts: checkpoints load with weights_only."""
    from omegaconf import Container, OmegaConf

    return {
        k: OmegaConf.to_container(v, resolve=True) if isinstance(v, Container) else v
        for k, v in values.items()
    }


def _stable_key(rel: str) -> str:
    """Order images by a hash of their path, so a prior over the first N is a fair, stable sample."""
    return hashlib.sha1(rel.encode()).hexdigest()
