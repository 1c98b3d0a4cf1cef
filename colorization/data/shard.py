"""Write any source as WebDataset tar shards: `python -m colorization.data.shard SRC OUT [--shard-size N]`.

    python -m colorization.data.shard data/cats out/cats-shards --source cats
    python -m colorization.data.shard /data/imagenet out/imagenet --source imagenet --shard-size 1000
    aws s3 sync out/imagenet s3://bucket/imagenet      # then: data=shards data.root=s3://bucket/imagenet

The source is indexed as training would index it (colorization.data.index: sizes, gray flags, skipped files)
and split as today (colorization.data.splits: split folders, else a hash of the path, with --val-fraction and
--test-fraction); each split is written in a seeded random order (so a shard mixes classes) as
OUT/<split>-NNNNNN.tar, --shard-size samples each (fewer where --min-shards asks for more shards). A sample
is `<key>.<suffix>` (the original file's bytes, not re-encoded) and `<key>.json` (path, split, width, height,
gray, bytes: the index facts), so readers need no index. OUT/shards.json, written last, lists every shard
with its sample and gray counts: what a reader needs to give every DDP rank the same number of batches. Each
shard and the manifest are written to a temporary file and renamed, so an interrupted run leaves no half
shard under a real name.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from colorization.atomic import atomic_path
from colorization.data.splits import SPLITS
from colorization.errors import ColorizationError

log = logging.getLogger(__name__)

MANIFEST = "shards.json"
"""The manifest's file name inside a shard folder (or URL prefix)."""
MANIFEST_VERSION = 1
DEFAULT_SHARD_SIZE = 1000
"""Samples per shard: about 110 MB of ImageNet JPEGs, inside WebDataset's advised 100 MB to 1 GB."""


def _options(pairs: list[str]) -> dict[str, Any]:
    """--option key=value pairs (values read as YAML: numbers, lists, null) for the source's constructor."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ColorizationError(f"--option {pair!r}: expected key=value (e.g. --option classes=27)")
        out[key] = yaml.safe_load(value)
    return out


def write_shards(
    src: str | Path,
    out: str | Path,
    *,
    source: str = "folder",
    shard_size: int = DEFAULT_SHARD_SIZE,
    min_shards: int = 1,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Index and split the source `source` rooted at src and write its shards and manifest to out.

    Each split gets shards of at most shard_size samples, and at least min_shards shards when it has that many
    samples (so that a small split, e.g. validation, still gives every reader of a large run a shard).
    """
    from rich.progress import Progress

    from colorization import checks
    from colorization.data.datamodule import LabDataModule
    from colorization.data.streaming import webdataset

    wds = webdataset()

    shard_size = checks.integer("--shard-size", shard_size, low=1)
    min_shards = checks.integer("--min-shards", min_shards, low=1)
    dm = LabDataModule(
        source, root=src, val_fraction=val_fraction, test_fraction=test_fraction, drop_gray=False, **options
    )
    dm.prepare_data()
    dm.setup()
    index = dm.index
    assert index is not None
    rows = {rel: i for i, rel in enumerate(index.paths)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "format": "webdataset",
        "source": repr(dm.source),
        "val_fraction": dm.val_fraction,
        "test_fraction": dm.test_fraction,
        "seed": seed,
        "skipped": index.skipped_report(),
        "splits": {},
    }
    rng = np.random.default_rng(seed)
    total = sum(len(dm.splits[s]) for s in SPLITS)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"sharding {dm.source!r}", total=total)
        for split in SPLITS:
            paths = dm.splits[split]
            order = rng.permutation(len(paths))
            size = max(1, min(shard_size, -(-len(paths) // min_shards)))
            shards = []
            for start in range(0, len(paths), size):
                name = f"{split}-{len(shards):06d}.tar"
                info = {"name": name, "count": 0, "gray": 0, "bytes": 0}
                with atomic_path(out / name) as tmp, open(tmp, "wb") as f:
                    writer = wds.TarWriter(f, encoder=False, mtime=0)
                    for pos in order[start : start + size].tolist():
                        rel = paths[pos]
                        entry = index.entry(rows[rel])
                        data = (index.root / rel).read_bytes()
                        key = f"{split}-{start + info['count']:09d}"
                        facts = {"path": rel, "split": split, "width": entry.width, "height": entry.height,
                                 "gray": entry.gray, "bytes": entry.bytes}  # fmt: skip
                        suffix = Path(rel).suffix.lower().lstrip(".") or "img"
                        writer.write({"__key__": key, suffix: data, "json": json.dumps(facts).encode()})
                        info["count"] += 1
                        info["gray"] += int(entry.gray)
                        info["bytes"] += len(data)
                        bar.advance(task)
                    writer.close()
                shards.append(info)
            manifest["splits"][split] = shards
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: list[str] | None = None) -> int:
    """The command line: one line on error, a summary on success."""
    parser = argparse.ArgumentParser(
        prog="python -m colorization.data.shard", description=__doc__.splitlines()[0].split(":")[0]
    )
    parser.add_argument("src", help="the source's data root (data.root)")
    parser.add_argument("out", type=Path, help="folder to write the shards and shards.json into")
    parser.add_argument("--source", default="folder", help="catalogue name (folder, imagenet, cats, ...)")
    parser.add_argument(
        "--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="samples per shard, at most"
    )
    parser.add_argument(
        "--min-shards",
        type=int,
        default=1,
        help="shards per split, at least (e.g. ranks x workers of the run)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.1, help="as data.val_fraction")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="as data.test_fraction")
    parser.add_argument("--seed", type=int, default=0, help="of the sample order inside each split")
    parser.add_argument("--option", action="append", default=[], help="source option key=value (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        manifest = write_shards(
            args.src, args.out, source=args.source, shard_size=args.shard_size, min_shards=args.min_shards,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
            **_options(args.option),
        )  # fmt: skip
    except (ColorizationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(
        f"{s} {sum(x['count'] for x in manifest['splits'][s])} in {len(manifest['splits'][s])} shard(s)"
        for s in SPLITS
    )
    print(f"wrote {args.out / MANIFEST}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
