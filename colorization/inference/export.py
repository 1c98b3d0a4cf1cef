"""Export a trained checkpoint to ONNX for deployment where PyTorch is too heavy.

    python -m colorization.export --ckpt last.ckpt -o model.onnx [--temperature 0.38] [--opset 17]
    python -m colorization.export --pretrained eccv16 -o eccv16.onnx [--weights PATH]
    python -m colorization.export --ckpt last.ckpt --bundle deploy/ [--calibrate data=cats]

``--bundle`` writes a torch-free deploy folder (colorization.inference.bundle); ``--calibrate`` also an
int8 model (colorization.inference.quantize).

The graph maps normalised L (``L``: float32 B×1×H×W, (L-50)/100) to ab in Lab units (``ab``: float32
B×2×H×W, same H and W), with dynamic batch, height and width. For classification models the annealed
mean is inside the graph, at the temperature chosen here (the model's own T by default). The model's
image size, size_multiple, temperature and objective are stored in the ONNX metadata_props (the keys
of colorization.inference.info.ModelInfo), which ``python -m colorization.colorize --onnx`` reads. A model
that takes user hints (SIGGRAPH17) has a second input, ``hints`` (float32 B×3×H×W). The
exporter is torch's TorchScript-based one (``dynamo=False``): the dynamo exporter needs onnxscript,
which is not a dependency.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from colorization.errors import ColorizationError
from colorization.inference.backends import load_model
from colorization.inference.info import DEFAULT_SIZE, ModelInfo, require

__all__ = ["MIN_OPSET", "check_parity", "export_model", "export_onnx", "export_pretrained", "main"]

MIN_OPSET = 17


def export_model(
    model: torch.nn.Module,
    output: str | Path,
    info: ModelInfo,
    *,
    opset: int = MIN_OPSET,
    example_size: int | None = None,
    check: bool = True,
    atol: float = 1e-3,
    logits: bool = False,
) -> Path:
    """Export a torch module (L_n → ab) to ONNX with dynamic batch/H/W and the info as metadata.

    `logits`: for a classification model (an annealed-mean decoder with `net` and `points`), export the
    net's bin logits instead (output ``logits``; the bins and output stride go into the metadata), so that
    the temperature is chosen at run time and int8 quantisation leaves the decoding in float.
    """
    onnx = require("onnx")
    if check:
        require("onnxruntime")  # before exporting: no half-checked file is left behind
    if opset < MIN_OPSET:
        raise ColorizationError(f"--opset must be at least {MIN_OPSET}, got {opset}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    extra: dict[str, str] = {}
    output_name = "ab"
    if logits and info.objective == "classification" and hasattr(model, "points"):
        points = model.points.detach().cpu().float()
        extra = {
            "bins": json.dumps([[round(float(a), 6), round(float(b), 6)] for a, b in points.tolist()]),
            "output_stride": str(int(getattr(model, "output_stride", 1))),
            "output": "bin logits, float32 BxQxhxw (h = H / output_stride); ab = annealed mean over bins",
        }
        model, output_name = _Logits(model.net).eval(), "logits"
    m = max(1, int(info.size_multiple))
    side = example_size or info.image_size or DEFAULT_SIZE
    side = max(m, (side // m) * m)
    example: tuple[torch.Tensor, ...] = (torch.zeros(1, 1, side, side),)
    names = ["L"]
    if info.hints:
        example, names = (*example, torch.zeros(1, 3, side, side)), ["L", "hints"]
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notes
        torch.onnx.export(
            model,
            example,
            str(output),
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=[output_name],
            dynamic_axes={**{name: axes for name in names}, output_name: axes},
            do_constant_folding=True,
        )
    proto = onnx.load(str(output))
    meta = info.to_metadata()
    meta["exported_from"] = Path(info.source).name if info.source else ""
    meta.update(extra)
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "Image colorization: normalised L in, ab (CIE Lab units) out."
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))
    if check:
        diff = check_parity(model, output, (2, 1, side + m, side), hints=info.hints)
        if diff > atol:
            raise ColorizationError(
                f"ONNX and PyTorch disagree after export: max |Δ{output_name}| = {diff:.3g} > {atol}"
            )
    return output


class _Logits(torch.nn.Module):
    """A classification net's raw bin logits (L_n [, hints] → B×Q×h×w), for a logits export."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """The net's output, unchanged."""
        return self.net(L) if hints is None else self.net(L, hints)


def check_parity(
    model: torch.nn.Module, onnx_path: str | Path, shape: tuple[int, int, int, int], hints: bool = False
) -> float:
    """Max |ab_onnx - ab_torch| on a random normalised-L input of `shape` (also tests dynamic axes), with
    a few random hint pixels for a model that takes hints."""
    ort = require("onnxruntime")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=gen) - 0.5
    inputs = (x,)
    if hints:
        mask = (torch.rand(shape, generator=gen) < 0.01).float()
        ab = (torch.rand((shape[0], 2, *shape[2:]), generator=gen) - 0.5) * mask
        inputs = (x, torch.cat([ab, mask], 1))
    with torch.inference_mode():
        ref = model(*inputs).float().numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), inputs, strict=True)}
    got = sess.run(None, feed)[0]
    if got.shape != ref.shape:
        raise ColorizationError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape}")
    return float(np.abs(got - ref).max())


def export_onnx(
    ckpt: str | Path,
    output: str | Path,
    *,
    temperature: float | None = None,
    image_size: int | None = None,
    opset: int = MIN_OPSET,
    check: bool = True,
) -> tuple[Path, ModelInfo]:
    """Export a Lightning checkpoint to ONNX; returns the file and the metadata stored in it."""
    model, info = load_model(ckpt, temperature=temperature, device="cpu")
    if image_size is not None:
        info.image_size = int(image_size)
    return export_model(model, output, info, opset=opset, check=check), info


def export_pretrained(
    name: str,
    output: str | Path,
    *,
    weights: str | Path | None = None,
    temperature: float | None = None,
    image_size: int | None = None,
    opset: int = MIN_OPSET,
    check: bool = True,
) -> tuple[Path, ModelInfo]:
    """Export published weights (colorization.nets.registry) to ONNX; returns the file and its metadata."""
    from colorization.inference.pretrained import load_pretrained

    model, info = load_pretrained(name, weights=weights, temperature=temperature, device="cpu")
    if image_size is not None:
        info.image_size = int(image_size)
    return export_model(model, output, info, opset=opset, check=check), info


def _calibration(args: argparse.Namespace, info: ModelInfo, resolve: Resolver | None) -> np.ndarray | None:
    """The L crops of --calibrate: data=NAME [overrides] through `resolve` (the app's splits), or a folder."""
    if not args.calibrate:
        return None
    from colorization.inference.quantize import calibration_crops, folder_photos

    spec = args.calibrate
    if spec[0].startswith("data="):
        if resolve is None:
            raise ColorizationError("--calibrate data=NAME needs python -m colorization.export (the app)")
        files = resolve(spec[0].removeprefix("data="), spec[1:])
    elif len(spec) == 1:
        files = folder_photos(spec[0])
    else:
        raise ColorizationError("--calibrate takes data=NAME [data overrides ...] or one folder of photos")
    side = info.image_size or DEFAULT_SIZE
    return calibration_crops(files, args.calibration_crops, side)


Resolver = Callable[[str, Sequence[str]], Sequence[Path]]
"""data config name, overrides → the image files of its train split (colorization.app.splits)."""


def main(argv: Sequence[str] | None = None, resolve: Resolver | None = None) -> int:
    """Entry point of `python -m colorization.export`; returns the exit status. `resolve` turns
    `--calibrate data=NAME ...` into training photos (given by the app, the one that knows Hydra)."""
    p = argparse.ArgumentParser(
        prog="python -m colorization.export",
        description="Export a colorization model to ONNX, or to a torch-free deploy bundle.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", metavar="PATH", help="Lightning checkpoint")
    src.add_argument("--pretrained", metavar="NAME", help="published weights: eccv16, siggraph17")
    p.add_argument("--weights", metavar="PATH", help="with --pretrained: a copy of the released file")
    dst = p.add_mutually_exclusive_group(required=True)
    dst.add_argument("-o", "--output", metavar="FILE", help="ONNX file to write")
    dst.add_argument(
        "--bundle", metavar="DIR", help="write a deploy folder: model, runtime, handler (numpy/PIL/ORT only)"
    )
    p.add_argument(
        "--calibrate",
        nargs="+",
        metavar="SPEC",
        help="also write an int8 model, calibrated on L crops of data=NAME's train split "
        "(data overrides may follow) or of a folder of photos",
    )
    p.add_argument("--calibration-crops", type=int, default=256, metavar="N", help="crops (default 256)")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="annealed-mean T baked into the graph (classification; default: the model's)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="image size to record when the checkpoint does not store it (default 256)",
    )
    p.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    args = p.parse_args(argv)
    if args.weights and not args.pretrained:
        p.error("--weights needs --pretrained NAME")
    try:
        if args.pretrained:
            from colorization.inference.pretrained import load_pretrained

            model, info = load_pretrained(
                args.pretrained, weights=args.weights, temperature=args.temperature, device="cpu"
            )
        else:
            model, info = load_model(args.ckpt, temperature=args.temperature, device="cpu")
        if args.size is not None:
            info.image_size = int(args.size)
        if args.opset < MIN_OPSET:
            raise ColorizationError(f"--opset must be at least {MIN_OPSET}, got {args.opset}")
        crops = _calibration(args, info, resolve)
        check = not args.no_check
        if args.bundle:
            from colorization.inference.bundle import write_bundle

            path = write_bundle(model, info, args.bundle, calibration=crops, opset=args.opset, check=check)
        else:
            path = export_model(model, args.output, info, opset=args.opset, check=check)
            if crops is not None:
                from colorization.inference.quantize import int8_path, quantize

                print(f"wrote {quantize(path, int8_path(path), crops)} (int8, {len(crops)} crops)")
    except (ColorizationError, ValueError, FileNotFoundError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 1
    t = "" if info.temperature is None else f", T={info.temperature:g}"
    size = info.image_size or DEFAULT_SIZE
    print(f"wrote {path} ({info.objective}, size {size}, size_multiple {info.size_multiple}{t})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
