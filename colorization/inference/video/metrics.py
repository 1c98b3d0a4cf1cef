"""The temporal metric: warping error, how much a film's chroma changes along the motion.

For each pair of consecutive frames in the same shot, the flow from the current frame back to the previous
one is computed on the frames' L (Farneback, colorization.inference.video.flow); the previous frame's ab is
warped to the current frame, and the error is the mean Euclidean ab distance (Lab units) between the
current ab and the warped one over reliable (non-occluded) pixels. The film's error is the mean over
pairs; pairs across a scene cut are skipped. The flow comes from L only, so the same flow judges a
colorized film and its colour source: "as stable as the real film" is a ratio near 1.

Frames are scaled (keeping aspect) to at most `max_side` pixels on their long side first: flicker is a
low-frequency matter, and this keeps the metric fast on HD films (0: full size).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from colorization import imaging
from colorization.inference.video import flow as dense
from colorization.inference.video.cuts import DEFAULT_THRESHOLD, CutDetector

__all__ = ["COLOUR_CHROMA", "TemporalReport", "file_report", "warping_error", "warping_errors"]

COLOUR_CHROMA = 2.0
"""A source with mean chroma (|ab|, Lab units) below this is a black-and-white film: no error for it."""


def _small(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(imaging.to_uint8(imaging.to_float(rgb))).resize(size, Image.BILINEAR))


def warping_errors(
    films: Iterable[tuple[np.ndarray, ...]], max_side: int = 320, cut_threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[float], list[float]]:
    """Warping errors of several aligned films at once: `films` yields, per time step, a tuple of RGB frames
    (the first one's L gives the flow and the cuts). Returns each film's error and mean chroma."""
    cuts = CutDetector(cut_threshold)
    sums: list[float] = []
    chroma: list[float] = []
    pairs = 0
    prev: tuple[np.ndarray, list[np.ndarray]] | None = None
    frames = 0
    for step in films:
        labs = [imaging.rgb_to_lab(_small(f, max_side)) for f in step]
        if not sums:
            sums, chroma = [0.0] * len(labs), [0.0] * len(labs)
        L8 = dense.lightness8(labs[0][..., 0])
        abs_ = [np.moveaxis(lab[..., 1:], 2, 0) for lab in labs]
        for i, ab in enumerate(abs_):
            chroma[i] += float(np.hypot(ab[0], ab[1]).mean())
        frames += 1
        if not cuts.step(labs[0][..., 0]) and prev is not None:
            back, fwd = dense.flow(prev[0], L8), dense.flow(L8, prev[0])
            ok = dense.reliable(back, fwd)
            if ok.any():
                pairs += 1
                for i, ab in enumerate(abs_):
                    d = np.linalg.norm(ab - dense.warp(prev[1][i], back), axis=0)
                    sums[i] += float(d[ok].mean())
        prev = (L8, abs_)
    n = max(1, pairs)
    return [s / n for s in sums], [c / max(1, frames) for c in chroma]


def warping_error(frames: Iterable[np.ndarray], max_side: int = 320) -> float:
    """The warping error (mean ab distance along the flow, Lab units) of one film's RGB frames."""
    return warping_errors(((f,) for f in frames), max_side)[0][0]


@dataclass
class TemporalReport:
    """Warping errors of a colorized film and of its source (None for a black-and-white source)."""

    output: float
    source: float | None

    def line(self) -> str:
        """The --report line."""
        text = f"warping error (ab, lower is steadier): output {self.output:.3f}"
        if self.source is None:
            return text + ", source is black and white"
        ratio = self.output / self.source if self.source > 0 else float("inf")
        return text + f", colour source {self.source:.3f} (output/source {ratio:.2f})"


def file_report(output: Path, source: Path, fps: float | None = None, max_side: int = 320) -> TemporalReport:
    """Decode a colorized film and its source side by side and measure both (flow from the source's L)."""
    from colorization.inference.video.io import probe, read_frames

    src, out = probe(source, fps), probe(output)
    (e_src, e_out), (c_src, _) = warping_errors(
        zip(read_frames(src), read_frames(out), strict=True), max_side
    )
    return TemporalReport(e_out, e_src if c_src >= COLOUR_CHROMA else None)
