"""Files that are either complete or absent: write beside the target, fsync, then rename over it.

A process killed while writing (SIGKILL, a full disk, power loss) must never leave a truncated file under
the real name, where the next run would take it for a good one (a checkpoint to resume from, an output
colorize skips as "already there"). So every such file is written to a hidden temporary file in the
target's own folder, `.NAME.<random>.partial`: the same filesystem, so the final `os.replace` is an atomic
rename and never a copy (a temporary file in $TMPDIR, often a tmpfs, would make it one). The data is
fsynced before the rename and the folder after it, so the new name points at complete data even after a
crash. On any failure, the temporary file is removed and the previous file under the name is untouched.

One writer per target: a `.NAME.*.partial` left by a killed earlier write is removed before the next
write of the same NAME. Files that several processes prepare at the same moment (the data's caches and
generated folders, written by two DDP ranks or the jobs of a parallel sweep) are serialised with
`file_lock`, a lock file beside the target that the kernel releases when its holder dies. Torch-free: used
by checkpoints, colorize's outputs, the data index, prior and shards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["PARTIAL_SUFFIX", "atomic_path", "atomic_write", "file_lock", "lock_path", "partial_files"]

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
"""Suffix of the temporary files (never an image suffix nor `.ckpt`, so no reader mistakes one for data)."""


def partial_files(path: str | Path) -> list[Path]:
    """The temporary files of unfinished writes of `path` in its folder (`.NAME.*.partial`)."""
    target = Path(path)
    if not target.parent.is_dir():
        return []
    return sorted(target.parent.glob(f".{target.name}.*{PARTIAL_SUFFIX}"))


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the rename itself is still atomic
        pass
    finally:
        os.close(fd)


def _temporary(target: Path) -> Path:
    """A fresh temporary name beside target, after removing what killed earlier writes left."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in partial_files(target):
        with contextlib.suppress(OSError):
            stale.unlink()
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


def _commit(temporary: Path, target: Path, fsync: bool) -> None:
    """Rename the complete temporary file over target (fsync of the data before, of the folder after)."""
    if fsync:
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
    os.replace(temporary, target)
    if fsync:
        _fsync_folder(target.parent)


@contextlib.contextmanager
def atomic_write(path: str | Path, fsync: bool = True) -> Iterator[BinaryIO]:
    """Open a binary file that becomes `path` only when the block ends without an error.

    The parent folder is created when missing. `fsync=False` skips the two fsyncs (the rename is still
    atomic against a killed process, not against a power loss).
    """
    target = Path(path)
    temporary = _temporary(target)
    try:
        with open(temporary, "xb") as file:
            yield file
        _commit(temporary, target, fsync)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """A temporary path beside `path` for writers that take a file name (np.savez, torch.save ...): it
    becomes `path` when the block ends without an error, and is removed otherwise."""
    target = Path(path)
    temporary = _temporary(target)
    try:
        yield temporary
        _commit(temporary, target, fsync)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def lock_path(target: str | Path) -> Path:
    """The lock file of target: a hidden sibling, `.<name>.lock` (index walks skip hidden files)."""
    target = Path(target)
    return target.with_name(f".{target.name.lstrip('.')}.lock")


@contextlib.contextmanager
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
