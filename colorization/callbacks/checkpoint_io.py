"""Checkpoint files written atomically: Lightning's CheckpointIO for every checkpoint of a run.

Lightning's TorchCheckpointIO serialises into memory and moves a temporary file from $TMPDIR into place;
with $TMPDIR on another filesystem (a tmpfs /tmp beside runs on disk) the move is a copy, and a kill during
it truncates the checkpoint under its real name. This plugin writes each checkpoint with
`colorization.atomic.atomic_write` instead: straight from torch.save into a temporary file in the
checkpoint's own folder, fsync, `os.replace`. Nothing checkpoint-sized goes to $TMPDIR or to memory, and
the previous checkpoint of the name survives any failed write.

A write that fails on the filesystem (no space left, no permission, a read-only or missing folder) stops
with one ColorizationError naming the folder and saying that the previous file is intact. Remote paths
(s3://, gs://, ...) are left to Lightning's own writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from colorization.atomic import atomic_write
from colorization.errors import ColorizationError

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError"]


class CheckpointWriteError(ColorizationError):
    """A checkpoint could not be written (disk full, permission, ...); the previous file is unchanged."""


def _os_error(err: BaseException) -> OSError | None:
    """The OSError behind an error (torch.save reports a failed write as a RuntimeError on top of it)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local writes are atomic (temporary file beside the target, fsync, rename)."""

    def __init__(self, fsync: bool = True) -> None:
        """fsync: flush each checkpoint to the disk before the rename (false: atomic against a killed
        process, not against a power loss; slightly faster on slow disks)."""
        super().__init__()
        self.fsync = bool(fsync)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Write `checkpoint` to `path` atomically; a filesystem error is one CheckpointWriteError."""
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(os.fspath(path))
        try:
            with atomic_write(target, fsync=self.fsync) as file:
                torch.save(checkpoint, file)
        except Exception as err:
            cause = _os_error(err)
            if cause is None:
                raise
            reason = cause.strerror or str(cause)
            kept = f"the previous {target.name} is intact" if target.is_file() else "nothing was written"
            raise CheckpointWriteError(
                f"cannot write checkpoint {target.name} into {target.parent}: {reason} ({kept})"
            ) from None
