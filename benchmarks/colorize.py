"""Benchmark: colorize one 1024×768 photo end to end, eager PyTorch against ONNX Runtime fp32 and int8.

    python benchmarks/colorize.py [--repeats 7] [--threads N] [--models demo paper eccv16] [--provider cuda]

End to end = float RGB in memory → L at full resolution → L resized to the net's size → network →
ab resized back → joined with the full-resolution L → gamut fit → RGB (what `colorize` does per file,
minus decoding and encoding the image files, which are the same for every backend). Every backend uses
the same Colorizer and colorization.imaging.runtime; only the network call differs. ONNX models are the
deploy bundle's form (`export --bundle`: a classification net returns bin logits, decoded by the
runtime's annealed mean); int8 is onnxruntime's static QDQ, calibrated on 64 L crops of other
scikit-image photos (no training data here; speed does not depend on it). Models (Zhang et al.'s
classification net with the annealed mean, random weights: speed does not depend on them):
  demo   the default of `python train.py`: ZhangNet width 0.25 at 64 px (conf/demo/zhang_samples.yaml)
  paper  the paper's ZhangNet, width 1.0 at 256 px (conf/model/zhang.yaml without the demo)
  eccv16 the published ECCV16 model as `colorize --pretrained eccv16` runs it: a state dict in the release's
         layout (random values) loaded through the registry (--weights), decoded at the release's T = 1
Targets (issue 15): pre/post-processing ≤ 25 ms; int8 end to end ≥ 2× eager torch for the paper model.
`--provider cuda` also times torch on the GPU, the CUDA execution provider in fp32 and fp16 and, when
onnxruntime has it, TensorRT's (fp16).
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
from colorization.inference.quantize import calibration_crops, quantize
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
    model = module.inference_model()
    set_batchnorm_statistics(model, calibration(tmp, size))
    return model, info


def set_batchnorm_statistics(model: torch.nn.Module, crops: np.ndarray) -> None:
    """Give a random net a trained net's activation scale: BatchNorm statistics of real L crops, so its
    logits, colours and gamut misses (what pre/post-processing and int8 feel) are not those of a blank net."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches
    model.train()
    with torch.no_grad():
        for batch in torch.from_numpy(crops).split(16):
            model(batch)
    model.eval()


def calibration(tmp: Path, size: int, seed: int = 0) -> np.ndarray:
    """64 L crops of scikit-image photos other than the benchmark's astronaut."""
    files = []
    for name in ("chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry"):
        files.append(tmp / f"{name}.png")
        Image.fromarray(getattr(skdata, name)()).save(files[-1])
    return calibration_crops(files, 64, size, seed=seed)


def cuda_variants(path: Path, tmp: Path) -> list[tuple[str, Path, list]]:
    """(label, model file, providers) for the GPU: CUDA EP fp32 and fp16, TensorRT fp16 when installed."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = tmp / "fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(half))
    out = [("cuda fp32", path, ["CUDAExecutionProvider"]), ("cuda fp16", half, ["CUDAExecutionProvider"])]
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        trt = (
            "TensorrtExecutionProvider",
            {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(tmp)},
        )
        out.append(("tensorrt fp16", path, [trt, "CUDAExecutionProvider"]))
    return out


def ciede_and_colourfulness(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean CIEDE2000 of b against a (float RGB), and b's colourfulness change relative to a's."""
    from skimage import color as skcolor

    from colorization.color import colorfulness

    de = float(skcolor.deltaE_ciede2000(skcolor.rgb2lab(a), skcolor.rgb2lab(b)).mean())
    ca, cb = (float(colorfulness(torch.from_numpy(x).permute(2, 0, 1)[None].float())[0]) for x in (a, b))
    return de, (cb - ca) / ca


def bench(
    name: str, width: float, size: int, rgb: np.ndarray, repeats: int, threads: int | None, provider: str
) -> None:
    """Time one model on every backend and print the figures and ratios against eager torch."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, info = build(name, width, size, tmp)
        fp32 = export_model(model, tmp / f"{name}.onnx", info, logits=True)
        int8 = quantize(fp32, tmp / f"{name}.int8.onnx", calibration(tmp, size, seed=1))
        L_n = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 1, size, size)).astype(np.float32)
        colorizers = {
            "eager torch": Colorizer(TorchBackend(model, "cpu", threads), info),
            "ORT fp32": Colorizer(OnnxBackend(fp32, "cpu", threads), info),
            "ORT int8": Colorizer(OnnxBackend(int8, "cpu", threads), info),
        }
        if provider == "cuda":
            colorizers["torch cuda"] = Colorizer(TorchBackend(model, "cuda"), info)
            for label, path, providers in cuda_variants(fp32, tmp):
                backend = OnnxBackend(fp32, "cpu", threads)
                backend.model = type(backend.model)(path, providers=providers)
                colorizers[label] = Colorizer(backend, info)
        rows = {}
        for label, c in colorizers.items():
            rows[label] = (
                timed(lambda c=c: c.backend(L_n), repeats),
                timed(lambda c=c: c.colorize_rgb(rgb), repeats),
            )
        outs = {
            label: colorizers[label].colorize_rgb(rgb) for label in ("eager torch", "ORT fp32", "ORT int8")
        }
        ab = colorizers["ORT fp32"].backend(L_n)  # pre/post alone: a stand-in network returning this ab
        pre_post = timed(lambda: Colorizer(lambda x, hints=None: ab, info).colorize_rgb(rgb), repeats)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"{name}: ZhangNet width {width:g} at {size}×{size} ({params:.2f} M parameters, "
        f"T={info.temperature:g}), photo {rgb.shape[1]}×{rgb.shape[0]}, median of {repeats}"
    )
    net_ref, e2e_ref = rows["eager torch"]
    print(f"  {'':14} {'network':>10} {'ratio':>7} {'end to end':>11} {'ratio':>7} {'difference':>10}")
    for label, (net, e2e) in rows.items():
        print(
            f"  {label:14} {net * 1e3:8.1f} ms {net_ref / net:6.2f}× "
            f"{e2e * 1e3:9.1f} ms {e2e_ref / e2e:6.2f}× {(e2e - net) * 1e3:7.1f} ms"
        )
    ratio = e2e_ref / rows["ORT int8"][1]
    print(
        f"  pre/post-processing alone (network stood in) {pre_post * 1e3:.1f} ms "
        f"(target ≤ 25 ms: {'met' if pre_post <= 0.025 else 'NOT met'})"
    )
    if name == "paper":
        print(
            f"  int8 end to end {ratio:.2f}× eager torch (target ≥ 2×: {'met' if ratio >= 2 else 'NOT met'})"
        )
    d32 = np.abs(outs["eager torch"] - outs["ORT fp32"]).max()
    de, dc = ciede_and_colourfulness(outs["ORT fp32"], outs["ORT int8"])
    print(
        f"  max |Δrgb| torch vs ORT fp32 {d32:.2e}; "
        f"int8 vs fp32: mean CIEDE2000 {de:.2f}, colourfulness {dc:+.1%}"
    )
    if provider != "cuda":
        print("  (CUDA EP fp16 / TensorRT not timed: run with --provider cuda on a GPU machine)")


def main() -> None:
    """Parse options and run the benchmark for each model asked."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for both (default: all cores)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["demo", "paper"])
    p.add_argument("--provider", choices=["cpu", "cuda"], default="cpu", help="cuda: also time the GPU")
    args = p.parse_args()
    photo = Image.fromarray(skdata.astronaut()).resize((1024, 768), Image.BICUBIC)
    rgb = np.asarray(photo).astype(np.float32) / 255.0
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for name in args.models:
        bench(name, *MODELS[name], rgb, args.repeats, args.threads, args.provider)


if __name__ == "__main__":
    main()
