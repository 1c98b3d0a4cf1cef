"""Files that several processes share (caches, generated data): one writer at a time, and complete or absent.

Two DDP ranks, two nodes on one file system, or the jobs of a parallel sweep may prepare the same data at the
same moment. `file_lock` serialises them with a lock file beside the target (fcntl/flock through the
`filelock` package: released by the kernel when a holder dies); `atomic_file` writes a temporary file in the
target's own folder, flushes it to disk and renames it over the target, so a reader sees the old file or the
new one, never half of one, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def lock_path(target: str | Path) -> Path:
    """The lock file of target: a hidden sibling, `.<name>.lock` (index walks skip hidden files)."""
    target = Path(target)
    return target.with_name(f".{target.name.lstrip('.')}.lock")


@contextmanager
def file_lock(target: str | Path, what: str) -> Iterator[None]:
    """Hold the exclusive lock of target while the block runs; waits (saying so once) for another holder."""
    from filelock import FileLock, Timeout

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("another process is %s; waiting for it (%s)", what, path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside target to write to; on success it replaces target (fsync, os.replace).

    On an exception the temporary file is removed and target is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
