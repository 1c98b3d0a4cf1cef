"""Files that are either complete or absent: write beside the target, fsync, then rename over it.

A process killed while writing (SIGKILL, a full disk, power loss) must never leave a truncated file under
the real name, where the next run would take it for a good one (a checkpoint to resume from, an output
colorize skips as "already there"). So every such file is written to a hidden temporary file in the
target's own folder, `.NAME.<random>.partial`: the same filesystem, so the final `os.replace` is an atomic
rename and never a copy (a temporary file in $TMPDIR, often a tmpfs, would make it one). The data is
fsynced before the rename and the folder after it, so the new name points at complete data even after a
crash. On any failure, the temporary file is removed and the previous file under the name is untouched.

One writer per target: a `.NAME.*.partial` left by a killed earlier write is removed before the next
write of the same NAME. Torch-free (stdlib only): used by checkpoints and by colorize's outputs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["PARTIAL_SUFFIX", "atomic_write", "partial_files"]

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


@contextlib.contextmanager
def atomic_write(path: str | Path, fsync: bool = True) -> Iterator[BinaryIO]:
    """Open a binary file that becomes `path` only when the block ends without an error.

    The parent folder is created when missing. `fsync=False` skips the two fsyncs (the rename is still
    atomic against a killed process, not against a power loss).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in partial_files(target):
        with contextlib.suppress(OSError):
            stale.unlink()
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
    try:
        with open(temporary, "xb") as file:
            yield file
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    if fsync:
        _fsync_folder(target.parent)
