"""Benchmark: colorize one 1024×768 photo end to end, eager PyTorch against ONNX Runtime, on this CPU.

    python benchmarks/colorize.py [--repeats 7] [--threads N] [--models demo paper eccv16]

End to end = float RGB in memory → Lab at full resolution → L resized to the net's size → network →
ab resized back → joined with the full-resolution L → gamut fit → RGB (what `colorize` does per file,
minus decoding and encoding the image files, which are the same for both backends). Both backends use
the same Colorizer; only the network call differs. Models (Zhang et al.'s classification net with the
annealed mean, random weights: speed does not depend on them):
  demo   the default of `python train.py`: ZhangNet width 0.25 at 64 px (conf/demo/zhang_samples.yaml)
  paper  the paper's ZhangNet, width 1.0 at 256 px (conf/model/zhang.yaml without the demo)
  eccv16 the published ECCV16 model as `colorize --pretrained eccv16` runs it: a state dict in the release's
         layout (random values) loaded through the registry (--weights), decoded at the release's T = 1,
         at 256 px, and its ONNX export (`python -m colorization.export --pretrained eccv16`)
Target (issue 6): ONNX Runtime at least 1.5× faster than eager PyTorch end to end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from colorization.inference import Colorizer, ModelInfo, OnnxBackend, TorchBackend
from colorization.inference.export import export_model
from colorization.inference.pretrained import load_pretrained
from colorization.nets import ZhangNet
from colorization.nets.zhang_release import zhangnet_to_eccv16
from colorization.objectives import ClassificationModule

MODELS = {"demo": (0.25, 64), "paper": (1.0, 256), "eccv16": (1.0, 256)}


def timed(fn, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` runs after two warm-up runs."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build(name: str, width: float, size: int, tmp: Path) -> tuple[torch.nn.Module, ModelInfo]:
    """The inference model and its info: a fresh classification module, or the registry's eccv16 loaded from
    a random state dict saved in the release's layout."""
    if name == "eccv16":
        weights = tmp / "colorization_release_v2-random.pth"
        torch.save(zhangnet_to_eccv16(ZhangNet(width=1.0, out_channels=313).state_dict()), weights)
        return load_pretrained("eccv16", weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = ClassificationModule(
            net={"_target_": "colorization.nets.ZhangNet", "width": width},
            optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
            prior="uniform",
            perceptual_metrics=False,
            rebalanced_auc=False,
        ).eval()
    info = ModelInfo(objective="classification", image_size=size, size_multiple=8, temperature=0.38)
    return module.inference_model(), info


def bench(name: str, width: float, size: int, rgb: np.ndarray, repeats: int, threads: int | None) -> None:
    """Time one model both ways and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        model, info = build(name, width, size, Path(tmp))
        path = export_model(model, Path(tmp) / f"{name}.onnx", info)
        torch_c = Colorizer(TorchBackend(model, "cpu", threads), info)
        onnx_c = Colorizer(OnnxBackend(path, "cpu", threads), info)
        L_n = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 1, size, size)).astype(np.float32)
        net_t = timed(lambda: torch_c.backend(L_n), repeats)
        net_o = timed(lambda: onnx_c.backend(L_n), repeats)
        e2e_t = timed(lambda: torch_c.colorize_rgb(rgb), repeats)
        e2e_o = timed(lambda: onnx_c.colorize_rgb(rgb), repeats)
        diff = np.abs(torch_c.colorize_rgb(rgb) - onnx_c.colorize_rgb(rgb)).max()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"{name}: ZhangNet width {width:g} at {size}×{size} ({params:.2f} M parameters, "
        f"T={info.temperature:g}), photo {rgb.shape[1]}×{rgb.shape[0]}, median of {repeats}"
    )
    print(
        f"  network only   torch {net_t * 1e3:8.1f} ms   onnxruntime {net_o * 1e3:8.1f} ms   "
        f"ratio {net_t / net_o:5.2f}×"
    )
    print(
        f"  end to end     torch {e2e_t * 1e3:8.1f} ms   onnxruntime {e2e_o * 1e3:8.1f} ms   "
        f"ratio {e2e_t / e2e_o:5.2f}×   (target ≥ 1.5×: {'met' if e2e_t / e2e_o >= 1.5 else 'NOT met'})"
    )
    print(
        f"  shared pre/post-processing ≈ {(e2e_o - net_o) * 1e3:.1f} ms; max |Δrgb| torch vs onnx {diff:.2e}"
    )


def main() -> None:
    """Parse options and run the benchmark for each model asked."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for both (default: all cores)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["demo", "paper", "eccv16"])
    args = p.parse_args()
    photo = Image.fromarray(skdata.astronaut()).resize((1024, 768), Image.BICUBIC)
    rgb = np.asarray(photo).astype(np.float32) / 255.0
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for name in args.models:
        bench(name, *MODELS[name], rgb, args.repeats, args.threads)


if __name__ == "__main__":
    main()
