"""Images/s of the data pipeline (workers -> Lab batches) vs a bare PIL decode + resize of the same files.

    python benchmarks/datamodule.py [--root DIR] [--images 384] [--size 224] [--workers 2] [--batch 32]
                                    [--train-aug '{"RandomHorizontalFlip": {"p": 0.5}}'] [--shard-size 32]

Without --root it writes photo-sized JPEGs (500x375, cut from scikit-image's bundled photos) to a temp folder.
Both sides use the same DataLoader settings (workers, batch size) and the same decode (PIL with JPEG draft,
shorter side resized to --size, square crop). The pipeline adds LabDataModule's dataset, uint8 collation and,
in the main process ("the device"), the training augmentation (by default the configured horizontal flip;
--train-aug takes any spec as JSON, see colorization.data.augmentation) and the RGB -> Lab conversion, through
the DataModule's on_after_batch_transfer with a Trainer in its training stage, as in training.
The target is a ratio of at least 0.9 with 2 workers. On a CPU-only machine the "device" step shares the
cores with the workers, so the ratio there measures the cost of the Lab conversion itself; the line
"workers only" isolates the loader's own overhead. There the DataModule converts on the cores its workers
leave free (at least one thread), whatever --threads says; --threads sets the rest of the main process.
The same files are also written as WebDataset shards (python -m colorization.data.shard, --shard-size samples
each) and read by the `shards` source with the same workers, batch and augmentation: its lines show what
streaming costs against the folder (both count the images their training loader really yields).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from colorization.data import Folder, LabDataModule
from colorization.data.shard import write_shards
from colorization.data.sources import sample_photos


class BarePIL(Dataset):
    """Plain PIL: open, draft, convert to RGB, resize the shorter side, centre crop; a uint8 tensor out."""

    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        s = self.size
        with Image.open(self.paths[i]) as img:
            w, h = img.size
            img.draft("RGB", (max(1, -(-w * s // min(w, h))), max(1, -(-h * s // min(w, h)))))
            img = img.convert("RGB")
        w, h = img.size
        nw, nh = max(s, round(w * s / min(w, h))), max(s, round(h * s / min(w, h)))
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - s) // 2, (nh - s) // 2
        img = img.crop((left, top, left + s, top + s))
        return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def make_photos(folder: Path, count: int, seed: int = 0) -> None:
    """count 500x375 JPEGs (quality 90) cut and resized from the bundled photos."""
    photos = list(sample_photos().values())
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        ch = int(min(h, w * 3 / 4) * rng.uniform(0.6, 1.0))
        cw = int(ch * 4 / 3)
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(img[top : top + ch, left : left + cw]).resize((500, 375), Image.BICUBIC)
        crop.save(folder / f"photo_{i:04d}.jpg", quality=90)


def timed(run) -> float:
    """Seconds one pass of run() takes."""
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="image folder (default: generated JPEGs)")
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the main process")
    parser.add_argument("--train-aug", type=json.loads, default=None, help="train_aug spec as JSON")
    parser.add_argument("--shard-size", type=int, default=32, help="samples per shard of the shard source")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "photos"
            root.mkdir()
            make_photos(root, args.images)
        aug = {} if args.train_aug is None else {"train_aug": args.train_aug}
        common = dict(
            image_size=args.size, batch_size=args.batch, num_workers=args.workers, drop_gray=False, **aug
        )
        dm = LabDataModule(Folder(root), val_fraction=0.0, test_fraction=0.0, **common)
        dm.prepare_data()
        dm.setup()
        paths = [dm.source.image_root / p for p in dm.splits["train"]]
        n = len(paths) // args.batch * args.batch
        shards = Path(tmp) / "shards"
        write_shards(
            root, shards, shard_size=args.shard_size, val_fraction=0.0, test_fraction=0.0, progress=False
        )
        sdm = LabDataModule("shards", root=shards, **common)
        sdm.setup()

        trainer = lightning.Trainer(
            accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        trainer.training = True  # the stage whose augmentation on_after_batch_transfer applies
        dm.trainer = sdm.trainer = trainer
        loader, shard_loader = dm.train_dataloader(), sdm.train_dataloader()
        n_shards = len(shard_loader) * args.batch

        def pipeline() -> None:
            for batch in loader:
                out = dm.on_after_batch_transfer(batch, 0)
                assert out["L"].shape[-1] == args.size

        def shard_pipeline() -> None:
            for batch in shard_loader:
                out = sdm.on_after_batch_transfer(batch, 0)
                assert out["L"].shape[-1] == args.size

        def shard_loader_only() -> None:
            for batch in shard_loader:
                assert batch["rgb"].shape[-1] == args.size

        bare_loader = DataLoader(
            BarePIL(paths, args.size), batch_size=args.batch, shuffle=True, num_workers=args.workers,
            persistent_workers=args.workers > 0, drop_last=True,
        )  # fmt: skip

        def loader_only() -> None:
            for batch in loader:
                assert batch["rgb"].shape[-1] == args.size

        def bare() -> None:
            for batch in bare_loader:
                assert batch.shape[-1] == args.size

        pipeline()  # warm-up: worker start, first-touch of the files
        bare()
        shard_pipeline()
        # alternate them so that all see the same machine load; report medians
        pipe_s, bare_s, load_s, shard_s, shard_load_s = [], [], [], [], []
        for _ in range(args.repeats):
            pipe_s.append(timed(pipeline))
            bare_s.append(timed(bare))
            load_s.append(timed(loader_only))
            shard_s.append(timed(shard_pipeline))
            shard_load_s.append(timed(shard_loader_only))
        pipe_rate, bare_rate = n / float(np.median(pipe_s)), n / float(np.median(bare_s))
        load_rate = n / float(np.median(load_s))
        shard_rate, shard_load_rate = (
            n_shards / float(np.median(shard_s)),
            n_shards / float(np.median(shard_load_s)),
        )
        ratio = float(np.median([b / p for p, b in zip(pipe_s, bare_s, strict=True)]))

    origin = "generated 500x375 JPEGs" if args.root is None else args.root
    print(f"train augmentation: {dm.augmentation('train') or 'none'}")
    print(f"images: {n} from {origin}, size {args.size}, "
          f"batch {args.batch}, workers {args.workers}, torch threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}")  # fmt: skip
    print(f"bare PIL decode + resize : {bare_rate:8.1f} images/s")
    print(f"pipeline workers only    : {load_rate:8.1f} images/s  (LabDataModule loader, no on-device step)")
    print(f"pipeline (workers -> Lab): {pipe_rate:8.1f} images/s")
    print(f"ratio pipeline / bare    : {ratio:8.3f}  (median of {args.repeats} paired passes; target >= 0.9)")
    print(f"shards workers only      : {shard_load_rate:8.1f} images/s  "
          f"(shards source, {args.shard_size} samples a shard, same workers and batch)")  # fmt: skip
    print(f"shards (workers -> Lab)  : {shard_rate:8.1f} images/s")
    print(f"ratio shards / folder    : {shard_rate / pipe_rate:8.3f}  (whole pipeline, images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
