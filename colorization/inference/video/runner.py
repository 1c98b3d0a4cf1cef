"""Colorize one film end to end: probe, resume, colorize chunk by chunk, mux with the audio, report.

`colorize_video` is what ``colorize film.mp4 -o out/`` runs for each video input. The output has the
input's frame count, frame rate, size and duration, and its audio streams copied unchanged. An unreadable
or truncated source (or audio the output's container cannot hold) is one ColorizationError and leaves
nothing behind (the parts folder is removed); an interrupted run (Ctrl-C, a kill, a full disk) keeps its
finished chunks, and the next run with the same settings continues from there
(colorization.inference.video.chunks). The output file appears only when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from colorization.errors import ColorizationError, ConfigError
from colorization.inference.colorizer import Colorizer
from colorization.inference.video import io
from colorization.inference.video.chunks import ChunkStore
from colorization.inference.video.cuts import DEFAULT_THRESHOLD
from colorization.inference.video.pipeline import FramePipeline
from colorization.inference.video.stabilise import MODES

__all__ = ["DEFAULT_MODE", "VideoOptions", "VideoResult", "colorize_video"]

DEFAULT_MODE = "flow"
"""The --stabilise default: the mode that measured best (lowest warping error at per-frame PSNR)."""


@dataclass
class VideoOptions:
    """Everything that decides a colorized film's pixels and file (all part of the resume key)."""

    mode: str = DEFAULT_MODE
    smoothing: float | None = None
    batch_size: int = 8
    chunk: int = 240  # frames per chunk, rounded up to a multiple of batch_size
    codec: str = "h264"
    crf: int = 18
    fps: float | None = None  # for a folder of frames
    cut_threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--stabilise {self.mode!r} is not a mode; allowed values: {', '.join(MODES)}")
        if self.codec not in io.CODECS:
            raise ConfigError(f"--codec {self.codec!r} is not known; allowed values: {', '.join(io.CODECS)}")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"--crf must be in 0..51 (lower is better quality), got {self.crf}")
        if self.batch_size < 1 or self.chunk < 1:
            raise ConfigError("--batch-size and --chunk must be >= 1")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"--fps must be > 0, got {self.fps}")
        self.chunk = -(-self.chunk // self.batch_size) * self.batch_size


@dataclass
class VideoResult:
    """What happened: frames colorized now, frames taken from finished chunks, cuts found in this run."""

    output: Path
    frames: int
    resumed_frames: int
    cuts: list[int]


def colorize_video(
    colorizer: Colorizer,
    source: str | Path,
    output: str | Path,
    options: VideoOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VideoResult:
    """Colorize `source` (a video file or a folder of numbered frames) into `output`; `progress(done,
    total)` is called after each batch of frames."""
    opts = options or VideoOptions()
    source, output = Path(source), Path(output)
    info = io.probe(source, opts.fps)
    if opts.mode == "flow":
        io.require("cv2")
    stat = source.stat()
    key = {
        "source": str(source.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "frames": info.frames,
        "model": colorizer.info.source,
        "temperature": colorizer.info.temperature,
        "net_size": colorizer.size,
        "keep_aspect": colorizer.keep_aspect,
        "enhance": colorizer.enhance,
        "options": asdict(opts),
    }
    store = ChunkStore(output, key)
    suffix = ".mp4" if opts.codec in ("h264", "h265") else ".mkv"
    count = -(-info.frames // opts.chunk)
    first = store.finished(count, suffix)
    pipeline = FramePipeline(colorizer, opts.mode, opts.batch_size, opts.smoothing, opts.cut_threshold)
    if first:
        pipeline.load(store.load_state(first - 1))
    done = first * opts.chunk
    if progress:
        progress(done, info.frames)
    try:
        frames = io.read_frames(info, start=done)
        for index in range(first, count):
            chunk = islice(frames, opts.chunk)
            colorized = _counting(pipeline.run(chunk), progress, done, info.frames)
            written = io.encode_frames(
                colorized,
                store.video(index, suffix),
                info.fps,
                (info.width, info.height),
                opts.codec,
                opts.crf,
            )
            done += written
            store.save_state(index, pipeline.state())
        io.mux([(store.video(i, suffix), i * opts.chunk) for i in range(count)], info, output)
    except ColorizationError:
        store.clear()  # a bad source or an output that cannot hold it: rerunning would fail the same way
        raise
    store.clear()
    return VideoResult(output, info.frames - first * opts.chunk, first * opts.chunk, pipeline.cut_frames)


def _counting(
    frames: Iterator[np.ndarray], progress: Callable[[int, int], None] | None, base: int, total: int
) -> Iterator[np.ndarray]:
    """Pass frames through, calling progress(base + frames so far, total) every few frames."""
    n = 0
    for f in frames:
        yield f
        n += 1
        if progress and n % 4 == 0:
            progress(base + n, total)
    if progress:
        progress(base + n, total)
