"""The data index at ImageNet scale: cache size, load time and memory, then index building on real JPEGs.

    python benchmarks/index_scale.py [--entries 1300000] [--workers 4] [--photos 3000] [--skip-memory]

1. Memory. A synthetic index of --entries images in ImageNet's layout (train/<wnid>/<wnid>_<n>.JPEG; no image
   files: this step reads none) is cached, loaded, split and wrapped in the training dataset, once as the code
   before issue 14 did it (a JSON cache, one IndexEntry object per image, splits and ImageDataset.paths as
   lists of str: reproduced here as it was) and once as now (colorization.data.index's columnar .npz, splits
   as row selections of one PathTable). Each runs in a fresh process, which reports the cache's size, the
   load time, its own resident memory growth, and then the private memory (USS: pages a worker owns, i.e.
   copied from the parent) that each of --workers DataLoader workers gained over one full shuffled pass that
   reads every path as ImageDataset.__getitem__ does. Target: the new design's growth under 50 MB a worker.
2. Building. --photos real 500x375 JPEGs (2% of them gray) are indexed by build_index (probing in one
   process per core) and compared with a bare PIL open + size of the same files in one process (the cheapest
   way to list image sizes). The gray flag needs a decode; the line "reduced decode" is what that decode
   costs alone (JPEG draft at 1/8 scale, one process), the floor of any index with a gray flag.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


def uss_mb() -> float:
    """Private memory of this process (Private_Clean + Private_Dirty of /proc/self/smaps_rollup), in MB."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024


def rss_mb() -> float:
    """Resident memory of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_rows(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """n ImageNet-like relative paths (1000 classes) with sizes and a 1.7% gray flag."""
    rng = np.random.default_rng(seed)
    per = -(-n // 1000)
    paths = [f"train/n{c:08d}/n{c:08d}_{i}.JPEG" for c in range(1000) for i in range(per)][:n]
    w = rng.integers(300, 501, n).astype(np.int32)
    h = rng.integers(300, 501, n).astype(np.int32)
    return paths, w, h, rng.random(n) < 0.017


# ------------------------------------------------------------------ the design before issue 14, as it was
@dataclass(frozen=True)
class LegacyEntry:
    """IndexEntry before issue 14 (one frozen dataclass object per image)."""

    path: str
    width: int
    height: int
    gray: bool
    bytes: int
    mtime_ns: int


class LegacyDataset:
    """ImageDataset before issue 14: `self.paths = list(paths)`."""

    def __init__(self, root: Path, paths: list[str]) -> None:
        self.root, self.paths = root, list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> int:
        return len(str(self.root / self.paths[i]))  # what ImageDataset does with a path, minus the decode


class PathsOnly:
    """The current ImageDataset's path lookup, minus the decode."""

    def __init__(self, data) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> int:
        return len(str(self.data.root / self.data.paths[i]))


def write_cache(design: str, n: int, folder: Path) -> Path:
    """The cache file of n synthetic entries in one design."""
    paths, w, h, gray = synthetic_rows(n)
    if design == "legacy":
        entries = [
            asdict(LegacyEntry(p, int(a), int(b), bool(g), 110_000, 0))
            for p, a, b, g in zip(paths, w, h, gray, strict=True)
        ]
        out = folder / "index.json"
        out.write_text(json.dumps({"version": 1, "entries": entries, "skipped": {}}))
        return out
    from colorization.data.index import DataIndex
    from colorization.data.table import PathTable

    index = DataIndex(
        Path("/data"),
        PathTable.from_strings(paths),
        w,
        h,
        gray,
        np.full(n, 110_000, np.int64),
        np.zeros(n, np.int64),
    )
    out = folder / "index.npz"
    index.save(out)
    return out


def child(design: str, cache: Path, workers: int) -> dict:
    """Load, split, wrap and pass over the cache in this (fresh) process; memory and times as a dict."""
    import torch
    from torch.utils.data import DataLoader

    from colorization.data.index import DataIndex
    from colorization.data.loading import ImageDataset
    from colorization.data.splits import FolderSplits, assign_split

    torch.set_num_threads(1)
    before = rss_mb()  # after the imports: only the index and the dataset count
    t = time.perf_counter()
    if design == "legacy":
        data = json.loads(cache.read_text())
        entries = [LegacyEntry(**e) for e in data["entries"]]
        splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for e in entries:
            if not e.gray:
                splits[assign_split(e.path, 0.1, 0.1, True, True)].append(e.path)
        dataset = LegacyDataset(Path("/data"), splits["train"])
        keep = (entries, splits)
    else:
        index = DataIndex.load(cache, "/data")
        folder = FolderSplits.from_index(index, 0.1, 0.1, True, True)
        dataset = PathsOnly(ImageDataset(Path("/data"), folder.paths["train"], 224))
        keep = (index, folder)
    load_s = time.perf_counter() - t
    main_mb = rss_mb() - before

    start: dict[str, float] = {}

    def init(worker_id: int) -> None:
        start["uss"] = uss_mb()

    def collate(items: list[int]) -> tuple[int, float]:
        info = torch.utils.data.get_worker_info()
        return info.id, uss_mb() - start["uss"]

    loader = DataLoader(
        dataset, batch_size=4096, shuffle=True, num_workers=workers, worker_init_fn=init, collate_fn=collate
    )
    growth: dict[int, float] = {}
    for worker, mb in loader:
        growth[worker] = mb
    del keep
    return {
        "cache_mb": cache.stat().st_size / 1e6,
        "load_s": load_s,
        "main_mb": main_mb,
        "workers_mb": [round(growth[w], 1) for w in sorted(growth)],
        "images": len(dataset),
    }


def memory(args: argparse.Namespace) -> None:
    """Part 1: both designs side by side."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for design in ("legacy", "columnar"):
            cache = write_cache(design, args.entries, Path(tmp))
            cmd = [sys.executable, __file__, "--child", design, str(cache), "--workers", str(args.workers)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ})
            results[design] = json.loads(out.stdout.strip().splitlines()[-1])
            cache.unlink()
    print(f"index of {args.entries:,} entries ({results['columnar']['images']:,} training images), "
          f"{args.workers} DataLoader workers, one full shuffled pass")  # fmt: skip
    print(f"{'':32}{'before (JSON, objects)':>24}{'now (npz, flat arrays)':>26}")
    old, new = results["legacy"], results["columnar"]
    print(f"{'cache file':32}{old['cache_mb']:>21.1f} MB{new['cache_mb']:>23.1f} MB")
    print(f"{'load + split + dataset':32}{old['load_s']:>22.2f} s{new['load_s']:>24.2f} s")
    print(f"{'main process growth (RSS)':32}{old['main_mb']:>21.1f} MB{new['main_mb']:>23.1f} MB")
    for w in range(args.workers):
        label = f"worker {w} growth (USS)"
        print(f"{label:32}{old['workers_mb'][w]:>21.1f} MB{new['workers_mb'][w]:>23.1f} MB")
    worst = max(new["workers_mb"])
    print(
        f"largest per-worker growth now: {worst:.1f} MB (target < 50 MB: {'met' if worst < 50 else 'MISSED'})"
    )


def building(args: argparse.Namespace) -> None:
    """Part 2: build_index on real JPEGs against a bare open + size."""
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).parent))
    from datamodule import make_photos

    from colorization.data.images import probe
    from colorization.data.index import build_index

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        make_photos(root, args.photos)
        for p in sorted(root.iterdir())[::50]:  # 2% gray photographs stored as RGB
            Image.open(p).convert("L").convert("RGB").save(p, quality=90)
        paths = sorted(root.iterdir())
        mb = sum(p.stat().st_size for p in paths) / 1e6

        def bare() -> None:
            for p in paths:
                with Image.open(p) as img:
                    img.size  # noqa: B018 - the header read is the work

        def reduced() -> None:
            for p in paths:
                with Image.open(p) as img:
                    img.draft(img.mode, (1, 1))
                    img.load()

        def threads() -> None:
            with ThreadPoolExecutor(os.cpu_count()) as pool:
                list(pool.map(probe, paths))

        def build(workers: int | None) -> float:
            t = time.perf_counter()
            index = build_index(root, workers=workers, progress=False)
            assert len(index) == len(paths) and index.gray_count == len(paths[::50])
            return len(paths) / (time.perf_counter() - t)

        def rate(fn) -> float:
            t = time.perf_counter()
            fn()
            return len(paths) / (time.perf_counter() - t)

        bare(), reduced()  # warm the page cache
        runs = {"bare": [], "reduced": [], "threads": [], "one": [], "procs": []}
        for _ in range(args.repeats):
            runs["bare"].append(rate(bare))
            runs["reduced"].append(rate(reduced))
            runs["threads"].append(rate(threads))
            runs["one"].append(build(1))
            runs["procs"].append(build(None))
        med = {k: float(np.median(v)) for k, v in runs.items()}
    cores = len(os.sched_getaffinity(0))
    print(f"\n{len(paths)} JPEGs of 500x375 ({mb / len(paths) * 1000:.0f} kB each, {len(paths[::50])} gray), "
          f"{cores} cores, medians of {args.repeats}")  # fmt: skip
    print(f"bare PIL open + size (1 process)      : {med['bare']:9.0f} files/s  (the reference)")
    print(f"reduced JPEG decode (1 process)       : {med['reduced']:9.0f} files/s  (the gray flag's floor)")
    print(f"probe in {cores} threads (the GIL holds)   : {med['threads']:9.0f} files/s")
    print(f"build_index, 1 process                : {med['one']:9.0f} files/s")
    print(f"build_index, {cores} processes              : {med['procs']:9.0f} files/s")
    ratio = med["procs"] / med["bare"]
    need = 0.8 * med["bare"] / max(med["one"], 1e-9)
    verdict = "met" if ratio >= 0.8 else "MISSED"
    print(f"ratio build_index / bare open + size  : {ratio:9.3f}  (target >= 0.8: {verdict}; "
          f"at this decode rate it needs about {need:.0f} free cores)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_300_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--photos", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("DESIGN", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.workers)))
        return 0
    if not args.skip_memory:
        memory(args)
    if not args.skip_build:
        building(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
