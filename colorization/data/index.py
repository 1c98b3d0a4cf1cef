"""The index of a source's image files: built once, cached as JSON next to the data, updated incrementally.

Each readable image is recorded with its size and a gray flag (no chroma: a black-and-white photograph);
unreadable, empty, truncated, non-image and oversized files are skipped with a reason and reported.
Splits come from the relative path alone (an explicit train/val/test folder, else a hash of the path), so a
file keeps its split when other files are added or removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from colorization.data.images import DEFAULT_MAX_PIXELS, is_image_file, probe

log = logging.getLogger(__name__)

INDEX_VERSION = 1
SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "seg_train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
    "seg_test": "test",
}
"""Folder names (case-insensitive) that put every file below them into a split."""


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
    """All images under one folder, plus the files that were skipped and why."""

    root: Path
    entries: list[IndexEntry] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        """Number of usable images (gray ones included)."""
        return len(self.entries)

    @property
    def gray_count(self) -> int:
        """How many usable images carry no chroma."""
        return sum(e.gray for e in self.entries)

    def skipped_report(self, first: int = 5) -> str:
        """One line: how many files were skipped, grouped by reason, and the first few paths."""
        if not self.skipped:
            return "no file skipped"
        reasons = Counter(r.split(" (")[0] for r in self.skipped.values())
        by_reason = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
        names = ", ".join(f"{p} ({r})" for p, r in sorted(self.skipped.items())[:first])
        more = ", ..." if len(self.skipped) > first else ""
        return f"skipped {len(self.skipped)} file(s): {by_reason}; e.g. {names}{more}"

    def to_json(self) -> dict:
        """Serialisable form (without the root, so a dataset folder can be moved)."""
        return {
            "version": INDEX_VERSION,
            "entries": [asdict(e) for e in self.entries],
            "skipped": self.skipped,
        }


def _walk(root: Path) -> Iterable[Path]:
    """Every file below root in sorted order, skipping hidden files and folders (caches, temp extractions)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def _load_cache(cache: Path | None) -> dict:
    """The cached index as a dict, or an empty one when absent, stale or unreadable."""
    if cache is None or not cache.is_file():
        return {}
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return data if data.get("version") == INDEX_VERSION else {}


def build_index(
    root: str | Path,
    *,
    accept: Callable[[str], bool] | None = None,
    cache: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threads: int | None = None,
    progress: bool = True,
) -> DataIndex:
    """Index the images below root that accept() keeps, reusing cached entries of unchanged files."""
    root = Path(root)
    cache = Path(cache) if cache is not None else None
    old = _load_cache(cache)
    old_entries = {e["path"]: IndexEntry(**e) for e in old.get("entries", [])}
    old_skipped: dict[str, str] = old.get("skipped", {})

    files: list[tuple[str, Path, os.stat_result]] = []
    for path in _walk(root):
        if not is_image_file(path):
            continue
        rel = path.relative_to(root).as_posix()
        if accept is not None and not accept(rel):
            continue
        try:
            files.append((rel, path, path.stat()))
        except OSError:
            continue

    index = DataIndex(root=root)
    todo: list[tuple[str, Path, os.stat_result]] = []
    for rel, path, st in files:
        prev = old_entries.get(rel)
        if prev is not None and prev.bytes == st.st_size and prev.mtime_ns == st.st_mtime_ns:
            index.entries.append(prev)
        elif (
            rel in old_skipped
            and prev is None
            and old.get("stamps", {}).get(rel) == [st.st_size, st.st_mtime_ns]
        ):
            index.skipped[rel] = old_skipped[rel]
        else:
            todo.append((rel, path, st))

    if todo:
        from rich.progress import Progress

        threads = threads or min(8, (os.cpu_count() or 1) * 2)
        with Progress(disable=not progress or len(todo) < 200, transient=True) as bar:
            task = bar.add_task(f"indexing {root.name}", total=len(todo))
            with ThreadPoolExecutor(threads) as pool:
                for (rel, _, st), info in zip(
                    todo, pool.map(lambda t: probe(t[1], max_pixels), todo), strict=True
                ):
                    bar.advance(task)
                    if info.skipped is not None:
                        index.skipped[rel] = info.skipped
                    else:
                        index.entries.append(
                            IndexEntry(rel, info.width, info.height, info.gray, st.st_size, st.st_mtime_ns)
                        )
    index.entries.sort(key=lambda e: e.path)
    stamps = {rel: [st.st_size, st.st_mtime_ns] for rel, _, st in files if rel in index.skipped}

    changed = bool(todo) or len(index.entries) != len(old_entries) or index.skipped != old_skipped
    if cache is not None and changed:
        data = index.to_json()
        data["stamps"] = stamps
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, cache)
        except OSError as exc:
            log.warning("could not cache the index at %s (%s); it will be rebuilt next time", cache, exc)
    if index.skipped and (todo or not old):
        log.warning("%s: %s", root, index.skipped_report())
    return index


def path_fraction(rel: str) -> float:
    """A stable number in [0, 1) from a relative path (first 8 bytes of its SHA-1)."""
    return int.from_bytes(hashlib.sha1(rel.encode("utf-8")).digest()[:8], "big") / 2.0**64


def folder_split(rel: str) -> str | None:
    """The split named by a folder in rel (train/val/test and their usual spellings), or None."""
    for part in rel.split("/")[:-1]:
        split = SPLIT_FOLDERS.get(part.lower())
        if split is not None:
            return split
    return None


def assign_split(
    rel: str, val_fraction: float, test_fraction: float, use_folders: bool = True, carve_val: bool = True
) -> str:
    """The split of one file: its split folder when present (val carved from train by hash unless the source
    has a val folder), else by hash of the path."""
    u = path_fraction(rel)
    named = folder_split(rel) if use_folders else None
    if named == "train":
        return "val" if carve_val and u < val_fraction else "train"
    if named is not None:
        return named
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"
