"""The worker side of the data: files decoded to uint8 crops, and the CPU thread budget beside the workers.

Workers only decode, resize and crop with PIL (colorization.data.images); nothing about colour happens there,
and uint8 bytes are the cheapest thing to move to the main process and the device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from colorization.data.images import load_random_crop, load_square
from colorization.data.table import PathTable


@contextmanager
def cpu_threads(num_workers: int, device: torch.device) -> Iterator[None]:
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
    """Files under root decoded to uint8 size×size crops: random resized (crop_scale) or centred.

    The paths are a flat PathTable (a list is packed into one), never a list of str: see
    colorization.data.table for why workers must not hold one Python object per image.
    """

    def __init__(
        self,
        root: Path,
        paths: PathTable | Sequence[str],
        size: int,
        crop_scale: tuple[float, float] | None = None,
    ) -> None:
        """root: indexed folder; paths: POSIX, relative to it; crop_scale: (min, max) area of random crops."""
        table = paths if isinstance(paths, PathTable) else PathTable.from_strings(paths)
        self.root, self.paths, self.size, self.crop_scale = Path(root), table, int(size), crop_scale

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
