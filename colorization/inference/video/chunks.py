"""Chunked, resumable work on a long film: encoded chunks and the stabiliser's state beside the output.

A film is colorized in chunks of `chunk` frames (a multiple of the batch size, so batches never straddle
chunks and a resumed run computes exactly what an uninterrupted one does). Each finished chunk leaves, in
the hidden folder ``.<output name>.parts/`` beside the output, its encoded frames (``NNNNN.mp4``) and the
pipeline's state after it (``NNNNN.npz``), both written atomically, the state last: a chunk counts as
finished when both exist. A run that finds the folder with the same settings (``manifest.json``: the source's
identity and every option that changes the pixels) continues after the last finished chunk without
re-encoding the others; different settings start over. The folder is removed once the film is complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from colorization.atomic import atomic_path, atomic_write

__all__ = ["ChunkStore"]


class ChunkStore:
    """The parts folder of one output film."""

    def __init__(self, output: Path, key: dict[str, Any]) -> None:
        self.output = Path(output)
        self.folder = self.output.with_name(f".{self.output.name}.parts")
        self.key = json.loads(json.dumps(key, sort_keys=True, default=str))
        self.resumed = False
        manifest = self.folder / "manifest.json"
        if self.folder.is_dir():
            try:
                same = json.loads(manifest.read_text()) == self.key
            except (OSError, ValueError):
                same = False
            if not same:
                self.clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        if not manifest.is_file():
            with atomic_write(manifest, fsync=False) as f:
                f.write(json.dumps(self.key, sort_keys=True, indent=1).encode())

    def video(self, index: int, suffix: str = ".mp4") -> Path:
        """The encoded frames of chunk `index`."""
        return self.folder / f"{index:05d}{suffix}"

    def _state(self, index: int) -> Path:
        return self.folder / f"{index:05d}.npz"

    def finished(self, count: int, suffix: str = ".mp4") -> int:
        """How many chunks from the first on are finished (video and state both there)."""
        done = 0
        while done < count and self.video(done, suffix).is_file() and self._state(done).is_file():
            done += 1
        self.resumed = done > 0
        return done

    def save_state(self, index: int, state: dict[str, np.ndarray]) -> None:
        """Record the pipeline's state after chunk `index` (this marks the chunk finished)."""
        with atomic_path(self._state(index), fsync=False) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **state)

    def load_state(self, index: int) -> dict[str, np.ndarray]:
        """The pipeline's state after chunk `index`."""
        with np.load(self._state(index)) as z:
            return {k: z[k] for k in z.files}

    def clear(self) -> None:
        """Remove the parts folder."""
        shutil.rmtree(self.folder, ignore_errors=True)
