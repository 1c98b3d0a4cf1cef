"""A short test film made in the test itself: a camera pan over one scikit-image photo, a cut to a pan over
another, film grain, and a sine tone as audio (AAC), written with PyAV; its true colour frames; and two
stand-in networks that flicker as per-frame colorizers do (a barely trained tiny net predicts almost the
same colour everywhere, so it has no flicker to remove)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata
from support import StandIn
from torch import nn

from colorization.color import ABGamut
from colorization.inference import Colorizer
from colorization.objectives.classification import AnnealedMeanInference

SIZE = (96, 64)  # width, height
FPS = Fraction(24)
CUT = 14  # index of the first frame after the cut
FRAMES = 26


def _pan(photo: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """n frames of a window sliding right and down over `photo` resized to 1.5× the frame, with grain."""
    w, h = SIZE
    big = np.asarray(Image.fromarray(photo).resize((int(w * 1.5), int(h * 1.5)), Image.BILINEAR))
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        x, y = 2 * i, i
        crop = big[y : y + h, x : x + w].astype(np.float32)
        crop += rng.normal(0, 4.0, crop.shape[:2])[..., None]  # grain: the same in every channel
        frames.append(np.clip(crop + 0.5, 0, 255).astype(np.uint8))
    return frames


def film_frames() -> list[np.ndarray]:
    """The film's true colour frames: astronaut pan, then (from CUT) coffee pan."""
    return _pan(skdata.astronaut(), CUT, 0) + _pan(skdata.coffee(), FRAMES - CUT, 1)


def write_film(path: Path, frames: list[np.ndarray] | None = None, audio: bool = True) -> Path:
    """Write frames (default: film_frames) as near-lossless H.264, with a 440 Hz AAC tone as long."""
    import av

    frames = film_frames() if frames is None else frames
    with av.open(str(path), "w") as box:
        v = box.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = SIZE[0], SIZE[1], "yuv444p"
        v.options = {"crf": "4"}
        a = None
        if audio:
            a = box.add_stream("aac", rate=44100)
            a.layout = "mono"
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts = i
            box.mux(v.encode(f))
        box.mux(v.encode(None))
        if a is not None:
            n = int(44100 * len(frames) / FPS)
            t = np.arange(n) / 44100
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for s in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[:, s : s + 1024], format="fltp", layout="mono")
                af.sample_rate, af.pts = 44100, s
                box.mux(a.encode(af))
            box.mux(a.encode(None))
    return path


class LogitStandIn(nn.Module):
    """L_n → Q=313 bin logits at 1/4 resolution from a fixed random conv net: a classification network
    whose colours respond to local lightness, so grain and sub-pixel motion make it flicker."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 313, 1)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
                conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.tanh(self.conv1(nn.functional.avg_pool2d(x, 4) * 4)))


def stand_in(kind: str) -> Colorizer:
    """A Colorizer at 64 px around a stand-in: "classification" (logits, annealed mean at T = 0.38, the
    objective's own inference module) or "regression" (ab)."""
    if kind == "classification":
        model = AnnealedMeanInference(LogitStandIn(), ABGamut.zhang().points, 0.38, output_stride=4)
        return Colorizer.from_module(model, size=64)
    return Colorizer.from_module(StandIn(), size=64)
