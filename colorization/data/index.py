"""The index of a source's image files: built once, cached next to the data, updated incrementally.

Each readable image is recorded with its size and a gray flag (no chroma: a black-and-white photograph);
unreadable, empty, truncated, non-image and oversized files are skipped with a reason and reported.
The index is columnar: paths in a flat `PathTable`, sizes, flags and file stamps in numpy arrays, so that
1.3 M images cost about 100 MB once, shared by forked DataLoader workers, instead of 1.3 M Python objects
copied into each of them (benchmarks/index_scale.py). The cache is an uncompressed .npz of those arrays,
written atomically under a lock (two ranks, nodes or sweep jobs never write one cache file at once).
Files are probed in worker processes (a reduced decode is CPU work that the GIL would serialise in threads).
Splits come from the relative path alone (colorization.data.splits), so a file keeps its split when other
files are added or removed.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorization.atomic import atomic_path, file_lock
from colorization.data.images import DEFAULT_MAX_PIXELS, is_image_file, probe
from colorization.data.splits import SPLIT_FOLDERS, SPLITS, assign_split, folder_split, path_fraction
from colorization.data.table import PathTable

__all__ = [
    "SPLITS",
    "SPLIT_FOLDERS",
    "DataIndex",
    "IndexEntry",
    "assign_split",
    "build_index",
    "folder_split",
    "path_fraction",
]

log = logging.getLogger(__name__)

INDEX_VERSION = 2
PROCESS_MIN_FILES = 256
"""Below this many files to probe, probing stays in the calling process (a pool costs more to start)."""
_COLUMNS = (("width", np.int32), ("height", np.int32), ("gray", np.bool_), ("bytes", np.int64))


@dataclass(frozen=True)
class IndexEntry:
    """One usable image: path relative to the indexed folder (POSIX), pixel size, gray flag, file stamp."""

    path: str
    width: int
    height: int
    gray: bool
    bytes: int
    mtime_ns: int


@dataclass
class DataIndex:
    """All images under one folder (columns, one row per image, sorted by path) and the skipped files."""

    root: Path
    paths: PathTable = field(default_factory=lambda: PathTable.from_strings([]))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    height: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    gray: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mtime_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    skipped: dict[str, str] = field(default_factory=dict)
    stamps: dict[str, list[int]] = field(default_factory=dict)
    """[size, mtime_ns] of each skipped file, so an unchanged bad file is not probed again."""

    @classmethod
    def from_entries(cls, root: Path, entries: Iterable[IndexEntry], **extra) -> DataIndex:
        """An index of entries (sorted here by path)."""
        rows = sorted(entries, key=lambda e: e.path)
        columns = {name: np.array([getattr(e, name) for e in rows], dtype) for name, dtype in _COLUMNS}
        mtime = np.array([e.mtime_ns for e in rows], np.int64)
        return cls(root, PathTable.from_strings(e.path for e in rows), mtime_ns=mtime, **columns, **extra)

    def __len__(self) -> int:
        """Number of usable images (gray ones included)."""
        return len(self.paths)

    @property
    def gray_count(self) -> int:
        """How many usable images carry no chroma."""
        return int(self.gray.sum())

    def entry(self, i: int) -> IndexEntry:
        """Row i as an IndexEntry."""
        return IndexEntry(
            self.paths[i], int(self.width[i]), int(self.height[i]), bool(self.gray[i]),
            int(self.bytes[i]), int(self.mtime_ns[i]),
        )  # fmt: skip

    @property
    def entries(self) -> list[IndexEntry]:
        """Every row as an IndexEntry (one object each: for small indexes, tests and tools)."""
        return [self.entry(i) for i in range(len(self))]

    def skipped_report(self, first: int = 5) -> str:
        """One line: how many files were skipped, grouped by reason, and the first few paths."""
        if not self.skipped:
            return "no file skipped"
        reasons = Counter(r.split(" (")[0] for r in self.skipped.values())
        by_reason = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
        names = ", ".join(f"{p} ({r})" for p, r in sorted(self.skipped.items())[:first])
        more = ", ..." if len(self.skipped) > first else ""
        return f"skipped {len(self.skipped)} file(s): {by_reason}; e.g. {names}{more}"

    def save(self, path: str | Path) -> None:
        """Write the columns as an uncompressed .npz (atomically; without the root, so data can move)."""
        meta = {"version": INDEX_VERSION, "skipped": self.skipped, "stamps": self.stamps}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), path_blob=self.paths.blob,
                path_offsets=self.paths.offsets, width=self.width, height=self.height, gray=self.gray,
                bytes=self.bytes, mtime_ns=self.mtime_ns,
            )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path, root: str | Path) -> DataIndex | None:
        """The index cached at path, or None when it is absent, of another version or unreadable."""
        path = Path(path)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes())
                if meta.get("version") != INDEX_VERSION:
                    return None
                paths = PathTable(z["path_blob"], z["path_offsets"])
                columns = {name: z[name].astype(dtype, copy=False) for name, dtype in _COLUMNS}
                mtime = z["mtime_ns"].astype(np.int64, copy=False)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring an unreadable index cache %s (%s)", path, exc)
            return None
        if any(len(c) != len(paths) for c in (*columns.values(), mtime)):
            return None
        return cls(
            Path(root), paths, mtime_ns=mtime, skipped=meta["skipped"], stamps=meta["stamps"], **columns
        )


def _walk(root: Path) -> Iterable[tuple[str, str]]:
    """(folder, file name) of every file below root, in sorted order, skipping hidden files and folders."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield dirpath, name


def _probe_all(paths: list[str], max_pixels: int, workers: int | None, progress: bool, title: str):
    """Probe results in the order of paths: in worker processes when there are many, with a progress bar."""
    from rich.progress import Progress

    workers = workers if workers is not None else max(1, len(os.sched_getaffinity(0)))
    with Progress(disable=not progress or len(paths) < 200, transient=True) as bar:
        task = bar.add_task(f"indexing {title}", total=len(paths))
        if workers <= 1 or len(paths) < PROCESS_MIN_FILES:
            for p in paths:
                yield probe(Path(p), max_pixels)
                bar.advance(task)
            return
        chunk = max(16, min(512, len(paths) // (workers * 8)))
        with ProcessPoolExecutor(workers) as pool:
            for info in pool.map(probe, map(Path, paths), [max_pixels] * len(paths), chunksize=chunk):
                yield info
                bar.advance(task)


def build_index(
    root: str | Path,
    *,
    accept: Callable[[str], bool] | None = None,
    cache: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    progress: bool = True,
) -> DataIndex:
    """Index the images below root that accept() keeps, reusing cached rows of unchanged files.

    workers: probing processes (None: one per usable core; 0 or 1: in this process). With a cache, the
    whole refresh holds the cache's lock: a second process waits, then finds the fresh cache.
    """
    if cache is None:
        return _build(Path(root), accept, None, max_pixels, workers, progress)
    with file_lock(cache, f"indexing {root}"):
        return _build(Path(root), accept, Path(cache), max_pixels, workers, progress)


def _build(root, accept, cache, max_pixels, workers, progress) -> DataIndex:
    """build_index's work, under the cache lock when there is a cache."""
    old = DataIndex.load(cache, root) if cache is not None else None
    old_rows = {p: i for i, p in enumerate(old.paths)} if old is not None else {}
    old_skipped = old.skipped if old is not None else {}
    old_stamps = old.stamps if old is not None else {}

    kept: list[int] = []  # rows of the old index whose files are unchanged
    skipped: dict[str, str] = {}
    stamps: dict[str, list[int]] = {}
    todo: list[tuple[str, int, int]] = []
    base = os.path.join(str(root), "")
    for folder, name in _walk(root):
        if not is_image_file(name):
            continue
        sub = folder[len(base) :].replace(os.sep, "/") if folder != str(root) else ""
        rel = f"{sub}/{name}" if sub else name
        if accept is not None and not accept(rel):
            continue
        try:
            st = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        row = old_rows.get(rel)
        if row is not None and old.bytes[row] == st.st_size and old.mtime_ns[row] == st.st_mtime_ns:
            kept.append(row)
        elif rel in old_skipped and old_stamps.get(rel) == [st.st_size, st.st_mtime_ns]:
            skipped[rel], stamps[rel] = old_skipped[rel], old_stamps[rel]
        else:
            todo.append((rel, st.st_size, st.st_mtime_ns))

    new: list[IndexEntry] = []
    if todo:
        results = _probe_all(
            [str(root / rel) for rel, _, _ in todo], max_pixels, workers, progress, root.name
        )
        for (rel, size, mtime), info in zip(todo, results, strict=True):
            if info.skipped is not None:
                skipped[rel], stamps[rel] = info.skipped, [size, mtime]
            else:
                new.append(IndexEntry(rel, info.width, info.height, info.gray, size, mtime))
    unchanged = old is not None and not new and len(kept) == len(old)
    if unchanged:
        index = DataIndex(
            root, old.paths, old.width, old.height, old.gray, old.bytes, old.mtime_ns, skipped, stamps
        )
    else:
        index = _merge(root, old, sorted(kept), new, skipped, stamps)

    changed = not unchanged or skipped != old_skipped
    if cache is not None and changed:
        try:
            index.save(cache)
        except OSError as exc:
            log.warning("could not cache the index at %s (%s); it will be rebuilt next time", cache, exc)
    if skipped and (todo or old is None):
        log.warning("%s: %s", root, index.skipped_report())
    return index


def _merge(root: Path, old: DataIndex | None, rows: list[int], new: list[IndexEntry], skipped, stamps):
    """An index of the old index's rows (sorted) and the new entries, in path order."""
    if old is None or not rows:
        return DataIndex.from_entries(root, new, skipped=skipped, stamps=stamps)
    keep = np.asarray(rows, np.int64)
    paths = [*old.paths.take(keep), *(e.path for e in new)]
    order = np.asarray(sorted(range(len(paths)), key=paths.__getitem__), np.int64)
    columns = {}
    for name, dtype in (*_COLUMNS, ("mtime_ns", np.int64)):
        fresh = np.array([getattr(e, name) for e in new], dtype)
        columns[name] = np.concatenate([getattr(old, name)[keep], fresh])[order]
    table = PathTable.from_strings(paths[i] for i in order.tolist())
    return DataIndex(root, table, skipped=skipped, stamps=stamps, **columns)
