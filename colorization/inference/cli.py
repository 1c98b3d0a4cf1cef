"""The colorize command: colorize users' photos at full resolution with a checkpoint or an ONNX model.

    python -m colorization.colorize INPUT... -o OUT (--ckpt PATH | --onnx model.onnx | --pretrained NAME)
    colorize photos/ "scans/**/*.tif" -o out/ --ckpt last.ckpt --compare
    colorize photo.jpg -o out/ --pretrained siggraph17 --hints hints.json

What happens to each photo is colorization.inference.colorizer's docstring. Choices, documented:
- Inputs: files, folders (searched recursively; the sub-folder structure is kept under OUT) and globs
  (``**`` allowed; quote them so the shell does not expand them first). Outputs are OUT/<stem>.png
  (or ``--format``); with a single input file and an OUT that ends in an image suffix, OUT is the file.
  Existing outputs are skipped unless ``--overwrite``. Each output is written to a temporary file beside
  it and renamed when complete, so a killed run leaves no truncated output that the next would skip.
- Inputs of more than ``--max-pixels`` pixels (default: the data index's limit, 50 million; 0: none) are
  refused from their header, before decoding: colorizing takes about 100 bytes per pixel. An animated
  GIF (or multi-page TIFF) is colorized from its first frame, and a note says so.
- Outputs are 8-bit; 16-bit and grayscale inputs are read at full precision. RGBA (and gray+alpha)
  keeps its alpha except in JPEG, where it is composited over white.
- ``--enhance W C ALPHA BETA`` applies the saturation enhancer to the result, chroma only.
- Exit status: 0 when at least one input was colorized (or every output already existed); 1 when
  nothing could be colorized (all inputs failed, no input found, or the model did not load);
  2 for a command-line usage error. Each failure is reported on one line and summarised at the end.
- The ONNX path (``--onnx``) imports onnxruntime, numpy and PIL only: never torch nor scikit-image.
- ``--pretrained eccv16|siggraph17`` uses Zhang et al.'s released weights (colorization.nets.registry),
  downloaded once into torch hub's cache; ``--weights PATH`` uses a copy of the file instead (offline).
- Films: a video input (mp4, mov, mkv, avi, webm; with ``--frames`` a folder of numbered frames) is
  colorized into a film by colorization.inference.video (its cli module: the options, the run), with
  temporal stabilisation (``--stabilise``), audio copied, resumable chunks and ``--report``.
- ``--hints FILE`` gives user points with colours to a model that takes them (siggraph17, or a checkpoint
  of model=siggraph17); the format is colorization.inference.hints' docstring. Without it such a model
  colorizes automatically.
"""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colorization.errors import ColorizationError
from colorization.imaging import DEFAULT_MAX_PIXELS
from colorization.inference.colorizer import Colorizer
from colorization.inference.files import (
    FORMATS,
    collect_inputs,
    flatten,
    plan_outputs,
    read_image,
    save,
    to_pil,
)
from colorization.inference.hints import load_hints
from colorization.inference.info import DEFAULT_SIZE
from colorization.inference.video.cli import add_video_arguments, run_videos, split_inputs

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The colorize command's argument parser."""
    p = argparse.ArgumentParser(
        prog="colorize",
        description="Colorize photos at full resolution, and films, with a checkpoint, ONNX model or "
        "published weights.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive), globs, or video files"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (or output file when there is one input and OUT has an image suffix)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", metavar="PATH", help="Lightning checkpoint (PyTorch path)")
    src.add_argument("--onnx", metavar="PATH", help="exported ONNX model (onnxruntime only, no torch)")
    src.add_argument(
        "--pretrained", metavar="NAME", help="published weights: eccv16, siggraph17 (downloaded once)"
    )
    p.add_argument(
        "--weights", metavar="PATH", help="with --pretrained: a copy of the released file (offline)"
    )
    p.add_argument("--hints", metavar="FILE", help="user hints (JSON points with colours) for siggraph17")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help=f"network input size (default: the trained size, else {DEFAULT_SIZE})",
    )
    p.add_argument(
        "--keep-aspect",
        action="store_true",
        help="scale the short side to SIZE and keep the aspect ratio instead of squashing",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="annealed-mean temperature T (classification; ONNX: bundle exports only, else fixed at export)",
    )
    p.add_argument(
        "--enhance",
        type=float,
        nargs=4,
        metavar=("W", "C", "ALPHA", "BETA"),
        default=None,
        help="apply the saturation enhancer, e.g. --enhance 0.8 0.2 2 4",
    )
    p.add_argument("--compare", action="store_true", help="also write OUT/<stem>_compare: input | result")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default=None,
        help="output format (default png, or OUT's suffix for a single output file)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument(
        "--max-pixels",
        type=_pixels,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse inputs of more than N pixels before decoding (default {DEFAULT_MAX_PIXELS}; 0: none)",
    )
    add_video_arguments(p)
    return p


def _pixels(text: str) -> int:
    """--max-pixels: an integer >= 0 (0: no limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is out of range; allowed values: integer >= 0")
    return value


def _first_line(e: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `colorize` / `python -m colorization.colorize`; returns the exit status."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.weights and not args.pretrained:
        parser.error("--weights needs --pretrained NAME")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        hints = load_hints(args.hints) if args.hints else None
        kwargs = dict(size=args.size, keep_aspect=args.keep_aspect, enhance=args.enhance)
        load = Colorizer.from_onnx if args.onnx else Colorizer.from_checkpoint
        if args.pretrained:
            load = functools.partial(Colorizer.from_pretrained, weights=args.weights)
        colorizer = load(
            args.pretrained or args.onnx or args.ckpt,
            temperature=args.temperature,
            device=args.device,
            threads=args.threads,
            **kwargs,
        )
        if hints is not None and not colorizer.info.hints:
            raise ColorizationError(
                "--hints needs a model that takes user hints (e.g. --pretrained siggraph17)"
            )
    except (ColorizationError, ValueError, FileNotFoundError) as e:
        console.print(f"error: {_first_line(e)}", markup=False)
        return 1

    films, photos = split_inputs(args.inputs, args.frames)
    if films:  # videos (by suffix) and, with --frames, folders of numbered frames: the video path
        v_done, v_skipped, v_failed = run_videos(films, args, colorizer, console)
        if not photos:
            summary = f"{v_done} films colorized, {v_skipped} already existed, {len(v_failed)} failed"
            console.print(f"{summary} → {args.output}", markup=False)
            return 0 if v_done or (v_skipped and not v_failed) else 1
    items, problems = collect_inputs(photos)
    try:
        plans, collisions = plan_outputs(items, Path(args.output), args.format)
    except ColorizationError as e:
        console.print(f"error: {e}", markup=False)
        return 1
    failures = problems + collisions
    for msg in failures:
        console.print(f"skipped: {msg}", markup=False)
    done = skipped = 0
    with Progress(
        TextColumn("colorizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(plans))
        for src, dst, fmt in plans:
            progress.update(task, description=src.name)
            cmp_dst = dst.with_name(dst.stem + "_compare" + dst.suffix)
            if dst.exists() and not args.overwrite:
                skipped += 1
                progress.console.print(f"exists, not overwritten (use --overwrite): {dst}", markup=False)
                progress.advance(task)
                continue
            try:
                with warnings.catch_warnings(record=True) as notes:
                    warnings.simplefilter("always", UserWarning)
                    rgb, alpha = read_image(src, max_pixels=args.max_pixels)
                for note in notes:
                    progress.console.print(f"note: {note.message}", markup=False)
                result = colorizer.colorize_rgb(rgb, hints)
                save(to_pil(result, alpha), dst, fmt)
                if args.compare:
                    side = np.concatenate([flatten(rgb, alpha), flatten(result, alpha)], axis=1)
                    save(to_pil(side), cmp_dst, fmt)
                done += 1
            except (ColorizationError, ValueError, OSError, MemoryError) as e:
                msg = f"{src}: {_first_line(e)}"
                failures.append(msg)
                progress.console.print(f"failed: {msg}", markup=False)
            progress.advance(task)
    summary = f"{done} colorized, {skipped} already existed, {len(failures)} failed or skipped"
    console.print(f"{summary} → {args.output}", markup=False)
    if films:
        done, skipped, failures = done + v_done, skipped + v_skipped, failures + v_failed
    if done == 0 and (skipped == 0 or failures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
