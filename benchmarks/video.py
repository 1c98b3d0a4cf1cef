"""Benchmark: colorize a 480p film, per frame against each stabilisation mode, eager PyTorch and ONNX Runtime.

    python benchmarks/video.py [--frames 48] [--repeats 5] [--batch-size 8] [--threads N] [--encode]

The film: a camera pan over scikit-image's astronaut at 854×480 with grain, held in memory. Timed: the
film's frames → colorized uint8 RGB frames (colorization.inference.video.pipeline: Lab at full resolution,
batched network calls at the net's size, cut detection, stabilisation, ab back to full size, gamut fit);
`--encode` adds H.264 encoding of the result. The model is the demo's (conf/demo/zhang_samples.yaml):
ZhangNet width 0.25, classification with the annealed mean, at 64 px, random weights (speed does not
depend on them). With the torch backend ema smooths the logits; ONNX files give ab, which ema smooths.
Target (issue 13): stabilisation costs at most 25% of the per-frame rate, i.e. ratio >= 0.75.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from colorization.inference import Colorizer, ModelInfo, OnnxBackend, TorchBackend
from colorization.inference.export import export_model
from colorization.inference.video import io
from colorization.inference.video.pipeline import FramePipeline
from colorization.inference.video.stabilise import MODES
from colorization.objectives import ClassificationModule

WIDTH, HEIGHT = 854, 480


def film(n: int) -> list[np.ndarray]:
    """n frames of a pan (3 px right, 1 px down per frame) over the astronaut, with grain."""
    big = np.asarray(Image.fromarray(skdata.astronaut()).resize((WIDTH + 3 * n, HEIGHT + n), Image.BILINEAR))
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        crop = big[i : i + HEIGHT, 3 * i : 3 * i + WIDTH].astype(np.float32)
        crop += rng.normal(0, 3.0, crop.shape[:2])[..., None]
        out.append(np.clip(crop + 0.5, 0, 255).astype(np.uint8))
    return out


def demo_model() -> tuple[torch.nn.Module, ModelInfo]:
    """The demo's classification ZhangNet (width 0.25) as an inference model, and its info at 64 px."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = ClassificationModule(
            net={"_target_": "colorization.nets.ZhangNet", "width": 0.25},
            optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
            prior="uniform",
            perceptual_metrics=False,
            rebalanced_auc=False,
        ).eval()
    info = ModelInfo(objective="classification", image_size=64, size_multiple=8, temperature=0.38)
    return module.inference_model(), info


def rates(colorizer: Colorizer, frames: list[np.ndarray], args: argparse.Namespace, tmp: Path) -> dict:
    """Median frames/s of colorizing (and with --encode, encoding) the film in each mode; the modes take
    turns in every repeat, so a change of the machine's load hits them alike."""

    def once(mode: str) -> float:
        t0 = time.perf_counter()
        out = FramePipeline(colorizer, mode, args.batch_size).run(frames)
        if args.encode:
            io.encode_frames(out, tmp / "bench.mp4", Fraction(24), (WIDTH, HEIGHT))
        else:
            for _ in out:
                pass
        return time.perf_counter() - t0

    for mode in MODES:  # warm-up
        once(mode)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            times[mode].append(once(mode))
    return {mode: len(frames) / statistics.median(t) for mode, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--encode", action="store_true", help="include H.264 encoding of the result")
    args = p.parse_args()
    frames = film(args.frames)
    model, info = demo_model()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_model(model, Path(tmp) / "demo.onnx", info)
        backends = {
            "eager": Colorizer(TorchBackend(model, "cpu", args.threads), info),
            "onnxruntime": Colorizer(OnnxBackend(path, "cpu", args.threads), info),
        }
        print(
            f"{args.frames} frames at {WIDTH}x{HEIGHT}, demo model at 64 px, batch {args.batch_size}"
            f"{', with H.264 encoding' if args.encode else ''}; {torch.get_num_threads()} torch threads"
        )
        for name, colorizer in backends.items():
            measured = rates(colorizer, frames, args, Path(tmp))
            line = ", ".join(
                f"{m} {r:.1f}/s" + ("" if m == "none" else f" (ratio {r / measured['none']:.2f})")
                for m, r in measured.items()
            )
            print(f"{name:12s} frames/s: {line}")
    print("target: ratio >= 0.75 (stabilisation costs at most 25% of the per-frame rate)")


if __name__ == "__main__":
    main()
