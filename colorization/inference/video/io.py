"""Films in and out: probe, decode and encode with PyAV (FFmpeg in its wheel), frame folders, the final mux.

A video is read as uint8 RGB frames, in order; a folder of numbered frames (``frame_0001.png`` ...) as a
film at a given frame rate. Colorized frames are encoded chunk by chunk into video-only files; the final
file is a remux of those chunks' packets (never a re-encode) with the source's audio streams copied
packet for packet, written atomically (colorization.atomic). Constant frame rate: frame i has pts i in a
time base of 1/fps, so the output has the input's frame count, rate and duration.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorization.atomic import atomic_path
from colorization.errors import ColorizationError
from colorization.imaging import is_image_file, to_uint8

__all__ = [
    "CODECS",
    "VIDEO_HINT",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "encode_frames",
    "is_video_file",
    "mux",
    "probe",
    "read_frames",
    "require",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
VIDEO_HINT = 'pip install "colorization-lab[video]"'
CODECS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "ffv1": "ffv1"}
"""--codec names and the FFmpeg encoder of each; ffv1 is lossless (--crf does not apply)."""
_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}


def require(package: str) -> Any:
    """Import av or cv2, or raise a one-line ColorizationError saying how to install the video extra."""
    try:
        return importlib.import_module(package)
    except ImportError:
        name = {"av": "PyAV", "cv2": "OpenCV"}.get(package, package)
        raise ColorizationError(f"video needs {name}, which is not installed: {VIDEO_HINT}") from None


def is_video_file(path: str | Path) -> bool:
    """Whether a path names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoInfo:
    """What a film is: its frames, rate and size; `frame_files` for a folder of numbered frames."""

    path: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    audio: int = 0  # number of audio streams
    frame_files: list[Path] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds: frames / fps (constant frame rate)."""
        return float(self.frames / self.fps)


def _first_line(e: BaseException) -> str:
    """An error's message in one line (FFmpeg's own words without the errno and the path)."""
    text = getattr(e, "strerror", None) or str(e)
    return text.splitlines()[0] if text else type(e).__name__


def _numbered(folder: Path) -> list[Path]:
    """The images of a folder, ordered by the last number in their names (frames without one refused)."""
    files = [f for f in folder.iterdir() if f.is_file() and is_image_file(f)]
    numbered = []
    for f in files:
        digits = re.findall(r"\d+", f.stem)
        if not digits:
            raise ColorizationError(
                f"{folder}: {f.name} has no frame number; a frame folder holds numbered frames"
            )
        numbered.append((int(digits[-1]), f.name, f))
    return [f for _, _, f in sorted(numbered)]


def probe(path: str | Path, fps: float | Fraction | None = None) -> VideoInfo:
    """Frame count, rate, size and audio of a video file (or of a folder of numbered frames at `fps`)."""
    path = Path(path)
    if path.is_dir():
        files = _numbered(path)
        if not files:
            raise ColorizationError(f"{path}: no numbered frames found in folder")
        from PIL import Image

        with Image.open(files[0]) as im:
            w, h = im.size
        rate = Fraction(fps or 24).limit_denominator(1001)
        return VideoInfo(path, len(files), rate, w, h, 0, files)
    if not path.is_file():
        raise ColorizationError(f"{path}: no such video file")
    av = require("av")
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise ColorizationError(f"cannot read video {path}: it has no video stream")
            stream = box.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate:
                raise ColorizationError(f"cannot read video {path}: its frame rate is unknown")
            count = stream.frames or sum(1 for p in box.demux(stream) if p.size)
            w, h = stream.codec_context.width, stream.codec_context.height
            audio = len(box.streams.audio)
            if stream.duration:
                declared = float(stream.duration * stream.time_base)
            else:
                declared = box.duration / 1e6 if box.duration else 0.0
    except ColorizationError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise ColorizationError(f"cannot read video {path}: {_first_line(e)}") from None
    if not stream.frames and count < declared * float(rate) - 1.5:  # frames counted: fewer than declared
        raise ColorizationError(
            f"cannot read video {path}: truncated, {count} of {declared * float(rate):.0f} frames are there"
        )
    if count < 1 or w < 1 or h < 1:
        raise ColorizationError(f"cannot read video {path}: no frames")
    return VideoInfo(path, int(count), Fraction(rate), int(w), int(h), audio)


def read_frames(info: VideoInfo, start: int = 0) -> Iterator[np.ndarray]:
    """The film's frames from index `start` on, as uint8 RGB H×W×3; a truncated or corrupt film is one
    ColorizationError (raised when the frames run out before the count the header promised)."""
    if info.frame_files:
        from colorization.inference.files import read_image

        for f in info.frame_files[start:]:
            rgb, _ = read_image(f)
            if rgb.shape[:2] != (info.height, info.width):
                raise ColorizationError(
                    f"{f}: frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the first"
                )
            yield to_uint8(rgb)
        return
    av = require("av")
    seen = 0
    try:
        with av.open(str(info.path)) as box:
            stream = box.streams.video[0]
            for frame in box.decode(stream):
                if seen >= start:
                    yield frame.to_ndarray(format="rgb24")
                seen += 1
                if seen >= info.frames:
                    return
    except (av.FFmpegError, OSError, ValueError) as e:
        raise ColorizationError(f"cannot read video {info.path}: {_first_line(e)} (frame {seen})") from None
    raise ColorizationError(
        f"cannot read video {info.path}: truncated, {seen} of {info.frames} frames could be decoded"
    )


def _encoder(box: Any, codec: str, crf: int, fps: Fraction, width: int, height: int) -> Any:
    """A video stream of the output container, set up for `codec` at quality `crf`."""
    name = CODECS.get(codec, codec)
    stream = box.add_stream(name, rate=fps)
    stream.width, stream.height = width, height
    if name == "ffv1":  # lossless: RGB kept as it is
        stream.pix_fmt = "bgr0"
    else:  # 4:2:0 needs even sides; an odd-sized film keeps its size in 4:4:4
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    stream.options = {
        "libx264": {"crf": str(crf), "x264-params": "mbtree=0"},
        "libx265": {"crf": str(crf), "x265-params": "log-level=error"},
        "libvpx-vp9": {"crf": str(crf), "b": "0"},
    }.get(name, {})
    stream.codec_context.time_base = 1 / fps
    # One thread, no macroblock tree: otherwise x264 coded the same frames differently from run to run here
    # (B-frames), and a resumed film must be the same file as an uninterrupted one.
    stream.codec_context.thread_count = 1
    return stream


def encode_frames(
    frames: Sequence[np.ndarray] | Iterator[np.ndarray],
    path: Path,
    fps: Fraction,
    size: tuple[int, int],
    codec: str = "h264",
    crf: int = 18,
) -> int:
    """Encode uint8 RGB frames into a video-only MP4 (Matroska for vp9/ffv1) at `path`, atomically; the
    number of frames written."""
    av = require("av")
    width, height = size
    fmt = "mp4" if codec in ("h264", "h265") else "matroska"
    n = 0
    with atomic_path(path, fsync=False) as tmp:
        with av.open(str(tmp), "w", format=fmt) as box:
            stream = _encoder(box, codec, crf, fps, width, height)
            for rgb in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts, frame.time_base = n, 1 / fps
                box.mux(stream.encode(frame))
                n += 1
            box.mux(stream.encode(None))
    return n


def _packets(path: Path, kind: str, index: int = 0) -> Iterator[Any]:
    """The packets of one stream of a file, with their time base set (empty flush packets skipped)."""
    av = require("av")
    with av.open(str(path)) as box:
        stream = getattr(box.streams, kind)[index]
        for p in box.demux(stream):
            if p.size and p.dts is not None:
                yield p


def mux(chunks: Sequence[tuple[Path, int]], info: VideoInfo, dst: Path) -> None:
    """Write dst from the encoded chunks (path, first frame index) and the source's audio streams, copied
    without re-encoding, interleaved by time; atomic: dst appears only when complete."""
    av = require("av")
    fmt = _CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        raise ColorizationError(f"{dst}: unknown video suffix; use one of {', '.join(VIDEO_SUFFIXES)}")
    frame = 1 / info.fps
    with atomic_path(dst) as tmp:
        with av.open(str(chunks[0][0])) as first, av.open(str(tmp), "w", format=fmt) as out:
            v_out = out.add_stream_from_template(first.streams.video[0])
            sources = [(v_out, _video_packets(chunks, frame))]
            if info.audio:
                with av.open(str(info.path)) as src:
                    for i, a in enumerate(src.streams.audio):
                        try:
                            stream = out.add_stream_from_template(a)
                        except (av.FFmpegError, ValueError) as e:
                            raise ColorizationError(
                                f"{dst}: the audio ({a.codec_context.name}) cannot be copied into "
                                f"{dst.suffix}: {_first_line(e)}; use an .mkv output"
                            ) from None
                        sources.append((stream, _packets(info.path, "audio", i)))
            try:
                _interleave(out, sources)
            except av.FFmpegError as e:
                raise ColorizationError(f"cannot write {dst}: {_first_line(e)}; use an .mkv output") from None


def _video_packets(chunks: Sequence[tuple[Path, int]], frame: Fraction) -> Iterator[Any]:
    """The chunks' video packets in order, their timestamps moved by each chunk's first frame."""
    for path, start in chunks:
        for p in _packets(path, "video"):
            shift = int(round(start * frame / p.time_base))
            p.pts = None if p.pts is None else p.pts + shift
            p.dts += shift
            yield p


def _interleave(out: Any, sources: list[tuple[Any, Iterator[Any]]]) -> None:
    """Mux packets from several streams in order of their decoding time."""
    heads = [next(it, None) for _, it in sources]
    while any(h is not None for h in heads):
        i = min(
            (k for k, h in enumerate(heads) if h is not None), key=lambda k: heads[k].dts * heads[k].time_base
        )
        packet = heads[i]
        packet.stream = sources[i][0]
        out.mux(packet)
        heads[i] = next(sources[i][1], None)
