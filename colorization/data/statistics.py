"""The empirical ab prior and gamut of a DataModule's training split: streamed once, then cached on disk.

Both are keyed by the training split's contents (paths, or shard names and counts), the image size and the
sample size, so a changed split or size recomputes them; a corrupt cache file is recomputed with a warning.
Under DDP only global rank 0 reads the cache or streams the split; the other ranks wait for it and receive
the result from it (Lightning's `strategy.broadcast`), so one run computes it once, writes it once
(atomically, under a lock shared with other runs on the same data) and needs no file system shared by nodes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

from colorization.atomic import atomic_path, file_lock
from colorization.color import ABGamut, ColorPrior, denormalize_ab, lab_batch
from colorization.data.loading import cpu_threads

log = logging.getLogger(__name__)
T = TypeVar("T")


class TrainingStatistics:
    """Mixin of LabDataModule: compute_prior and compute_gamut over its training split (centre crops).

    It reads the host's split data (`data`, built by setup()), trainer, image_size, batch_size, num_workers,
    prior_max_images, cache_dir and `loader_spec()`.
    """

    def _train_batches(self, what: str, device: torch.device | str | None = None) -> Iterator[torch.Tensor]:
        """ab (Lab units) of centre crops of all training images (or prior_max_images), with progress bar."""
        from rich.progress import Progress

        count, batches = self.split_data().statistics_batches(
            self.loader_spec("train"), self.prior_max_images
        )
        with Progress(transient=True) as bar:
            task = bar.add_task(f"{what} over {count} training images", total=count)
            for rgb in batches:
                rgb = rgb.to(device) if device is not None else rgb
                with cpu_threads(self.num_workers, rgb.device):
                    _, ab_n = lab_batch(rgb, check=False)  # uint8: the lookup-table path
                bar.advance(task, len(rgb))
                yield denormalize_ab(ab_n)

    def _cache_key(self, kind: str, extra: bytes = b"") -> Path:
        """Cache path of a prior or gamut, keyed by training split, image size, sample size and `extra`."""
        h = hashlib.sha1()
        h.update(f"{self.split_data().train_key()}|{self.image_size}|{self.prior_max_images}".encode())
        h.update(extra)
        return self.cache_dir / f"{kind}-{h.hexdigest()[:16]}.pt"

    def _on_rank_zero(self, compute: Callable[[], T]) -> T:
        """compute() on global rank 0 only; under DDP the other ranks wait and receive its result or error."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.world_size <= 1:
            return compute()
        outcome: tuple[str, Any] | None = None
        if trainer.is_global_zero:
            try:
                outcome = ("ok", compute())
            except Exception as exc:  # noqa: BLE001 - sent to the waiting ranks, then raised here too
                outcome = ("error", exc)
        outcome = trainer.strategy.broadcast(outcome, src=0)
        if outcome[0] == "error":
            raise outcome[1]
        return outcome[1]

    def _cached(self, path: Path, load: Callable[[Path], T], compute: Callable[[], T], save) -> T:
        """The value cached at path, else computed and cached (under the cache's lock, written atomically)."""

        def read() -> T | None:
            if not path.is_file():
                return None
            try:
                return load(path)
            except Exception as exc:  # noqa: BLE001 - a corrupt cache is recomputed
                log.warning("ignoring a bad cached %s (%s)", path, exc)
                return None

        value = read()
        if value is not None:
            return value
        with file_lock(path, f"computing {path.name}"):
            value = read()  # another run may have written it while this one waited
            if value is not None:
                return value
            value = compute()
            try:
                with atomic_path(path) as tmp:
                    save(value, tmp)
            except OSError as exc:
                log.warning("could not cache %s (%s)", path, exc)
        return value

    def compute_prior(self, gamut: ABGamut, device: torch.device | str | None = None) -> ColorPrior:
        """The empirical ab prior of the training split over gamut's bins: computed once, cached, reused."""

        def compute() -> ColorPrior:
            prior = ColorPrior(gamut.to("cpu"))
            for ab in self._train_batches("prior", device):
                prior.update(ab)  # nearest bins on ab's device; only the bin counts come back to the host
            return prior.finalize()

        def work() -> ColorPrior:
            key = gamut.points.detach().cpu().numpy().tobytes() + ColorPrior(gamut).smoothing.encode()
            path = self._cache_key("prior", key)  # one cache per smoothing method
            return self._cached(path, ColorPrior.load, compute, lambda prior, tmp: prior.save(tmp))

        return self._on_rank_zero(work)

    def compute_gamut(self, min_count: int = 1, device: torch.device | str | None = None) -> ABGamut:
        """The ab bins (grid 10) reached >= min_count times by the training split: computed once, cached."""

        def load(path: Path) -> ABGamut:
            return ABGamut(torch.load(path, map_location="cpu", weights_only=True))

        def work() -> ABGamut:
            path = self._cache_key("gamut", str(min_count).encode())
            compute = lambda: ABGamut.from_ab(self._train_batches("gamut", device), min_count=min_count)  # noqa: E731
            return self._cached(path, load, compute, lambda gamut, tmp: torch.save(gamut.points.cpu(), tmp))

        return self._on_rank_zero(work)
