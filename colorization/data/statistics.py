"""The empirical ab prior and gamut of a DataModule's training split: streamed once, then cached on disk.

Both are keyed by the training split's paths, the image size and the sample size, so a changed split or size
recomputes them; a corrupt cache file is recomputed with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from colorization.color import ABGamut, ColorPrior, denormalize_ab, lab_batch
from colorization.data.loading import ImageDataset, cpu_threads

log = logging.getLogger(__name__)


class TrainingStatistics:
    """Mixin of LabDataModule: compute_prior and compute_gamut over its training split (centre crops).

    It reads the host's splits, dataset(), setup(), source, image_size, batch_size, num_workers,
    prior_max_images and cache_dir.
    """

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
                with cpu_threads(self.num_workers, rgb.device):
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
        prior = ColorPrior(gamut.to("cpu"))
        key = gamut.points.detach().cpu().numpy().tobytes() + prior.smoothing.encode()  # one cache per method
        path = self._cache_key("prior", key)
        if path.is_file():
            try:
                return ColorPrior.load(path)
            except ValueError as exc:
                log.warning("ignoring a bad cached prior %s (%s)", path, exc)
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


def _stable_key(rel: str) -> str:
    """Order images by a hash of their path, so a prior over the first N is a fair, stable sample."""
    return hashlib.sha1(rel.encode()).hexdigest()
