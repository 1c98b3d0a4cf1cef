"""The video side of the colorize command: its options, which inputs are films, and the run over them.

    colorize film.mp4 -o out/ --ckpt last.ckpt [--stabilise flow] [--codec h264 --crf 18] [--report]
    colorize frames/ --frames --fps 24 -o out/ --ckpt last.ckpt

A video input (by suffix: mp4, mov, mkv, avi, webm), or with ``--frames`` a folder of numbered frames,
gives OUT/<stem>.mp4 (or OUT itself when there is one input and OUT has a video suffix); existing outputs
are skipped unless ``--overwrite``. A progress bar shows frames, frames/s and the time left.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from colorization.errors import ColorizationError
from colorization.inference.video.io import CODECS, VIDEO_SUFFIXES, is_video_file
from colorization.inference.video.runner import DEFAULT_MODE, VideoOptions
from colorization.inference.video.stabilise import MODES

__all__ = ["add_video_arguments", "run_videos", "split_inputs"]


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """The video options of the colorize parser."""
    g = p.add_argument_group("video (inputs ending in " + ", ".join(s[1:] for s in VIDEO_SUFFIXES) + ")")
    g.add_argument(
        "--stabilise",
        choices=MODES,
        default=DEFAULT_MODE,
        help=f"temporal stabilisation (default {DEFAULT_MODE})",
    )
    g.add_argument(
        "--smoothing", type=float, default=None, help="weight of the past in [0, 1) (default per mode)"
    )
    g.add_argument("--codec", choices=sorted(CODECS), default="h264", help="video encoder (default h264)")
    g.add_argument("--crf", type=int, default=18, help="quality, CRF-style: 0 best .. 51 worst (default 18)")
    g.add_argument("--batch-size", type=int, default=8, help="frames per network call (default 8)")
    g.add_argument("--chunk", type=int, default=240, help="frames per resumable chunk (default 240)")
    g.add_argument("--frames", action="store_true", help="folder inputs are numbered frames of one film")
    g.add_argument("--fps", type=float, default=None, help="frame rate of --frames folders (default 24)")
    g.add_argument("--report", action="store_true", help="print the warping error of output and source")


def split_inputs(inputs: list[str], frames: bool) -> tuple[list[Path], list[str]]:
    """Separate film inputs (video files; folders with --frames) from photo inputs."""
    films, photos = [], []
    for spec in inputs:
        p = Path(spec)
        if is_video_file(p) or (frames and p.is_dir()):
            films.append(p)
        else:
            photos.append(spec)
    return films, photos


class FramesPerSecond(ProgressColumn):
    """frames/s of a task."""

    def render(self, task: Any) -> Text:
        return Text("" if not task.speed else f"{task.speed:.1f} frames/s")


def _bar(bar: Progress) -> Any:
    """A progress callback for colorize_video: frames done of total; the frames of chunks finished in an
    earlier run count as done from the start, not as speed."""
    task = bar.add_task("", total=None)
    started = False

    def update(done: int, total: int) -> None:
        nonlocal started
        if not started:
            bar.reset(task, total=total, completed=done)
            started = True
        else:
            bar.update(task, completed=done)

    return update


def _destination(src: Path, out: Path, single: bool, codec: str) -> Path:
    """OUT itself for one input and a video suffix, else OUT/<stem>.mp4 (.mkv for vp9 and ffv1)."""
    if single and out.suffix.lower() in VIDEO_SUFFIXES:
        return out
    suffix = ".mp4" if codec in ("h264", "h265") else ".mkv"
    return out / ((src.stem if src.is_file() else src.name) + suffix)


def run_videos(
    films: list[Path], args: argparse.Namespace, colorizer: Any, console: Any
) -> tuple[int, int, list[str]]:
    """Colorize each film; returns (colorized, already existing, failure lines), each failure printed."""
    from colorization.inference.video.metrics import file_report
    from colorization.inference.video.runner import colorize_video

    if getattr(args, "hints", None):
        return 0, 0, [f"{f}: --hints apply to photos, not films" for f in films]
    opts = VideoOptions(
        mode=args.stabilise,
        smoothing=args.smoothing,
        batch_size=args.batch_size,
        chunk=args.chunk,
        codec=args.codec,
        crf=args.crf,
        fps=args.fps,
    )
    done = skipped = 0
    failures: list[str] = []
    out = Path(args.output)
    for src in films:
        dst = _destination(src, out, len(films) == 1, args.codec)
        if dst.exists() and not args.overwrite:
            skipped += 1
            console.print(f"exists, not overwritten (use --overwrite): {dst}", markup=False)
            continue
        columns = (
            TextColumn(src.name),
            BarColumn(),
            MofNCompleteColumn(),
            FramesPerSecond(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, console=console, transient=True) as bar:
                result = colorize_video(colorizer, src, dst, opts, _bar(bar))
            note = f" (resumed after {result.resumed_frames} frames)" if result.resumed_frames else ""
            console.print(
                f"{src} → {dst}: {result.frames + result.resumed_frames} frames{note}", markup=False
            )
            if args.report:
                console.print(f"{dst.name}: {file_report(dst, src, args.fps).line()}", markup=False)
            done += 1
        except KeyboardInterrupt:
            console.print(f"interrupted: {src}; run the same command again to continue", markup=False)
            raise SystemExit(130) from None
        except (ColorizationError, ValueError, OSError, MemoryError) as e:
            msg = f"{src}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            failures.append(msg)
            console.print(f"failed: {msg}", markup=False)
    return done, skipped, failures
