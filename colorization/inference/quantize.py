"""int8 models: static QDQ quantisation with onnxruntime's tools, calibrated on L crops of training photos.

    python -m colorization.export --ckpt last.ckpt --bundle out/ --calibrate data=cats
    python -m colorization.export --ckpt last.ckpt -o m.onnx --calibrate photos/     # also m.int8.onnx

Calibration: `count` random square crops (side 40–100 % of the short side) of the given photos, resized
to the network's size and reduced to normalised L, the input the network sees in colorize. The float
graph is pre-processed (shape inference, BatchNorm folding), then its convolutions and matrix products
get int8 weights (per channel) and uint8 activations (QDQ); everything else, the annealed mean included,
stays float. The ONNX metadata (ModelInfo) is copied over, so colorize and bundles read int8 files alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from colorization.errors import ColorizationError
from colorization.imaging import is_image_file, rgb8_over_white
from colorization.imaging.runtime import lightness, net_input
from colorization.inference.info import require

__all__ = ["QUANTIZED_OPS", "calibration_crops", "folder_photos", "int8_path", "quantize"]

QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
"""Operators given int8 weights; the rest of the graph (softmax, annealed mean, resizes) stays float."""


def int8_path(path: str | Path) -> Path:
    """Where the int8 twin of an ONNX file goes: m.onnx → m.int8.onnx."""
    path = Path(path)
    return path.with_name(path.stem + ".int8" + path.suffix)


def folder_photos(folder: str | Path) -> list[Path]:
    """The image files under a folder (recursive, sorted); a one-line error when there are none."""
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p)) if root.is_dir() else []
    if not files:
        raise ColorizationError(f"--calibrate {folder}: no image files found (give data=NAME or a folder)")
    return files


def calibration_crops(
    files: Sequence[str | Path], count: int = 256, size: int = 256, seed: int = 0
) -> np.ndarray:
    """`count` normalised-L crops (float32 count×1×size×size) from the photos, spread over them evenly."""
    if count < 1:
        raise ColorizationError(f"--calibration-crops must be at least 1, got {count}")
    if not files:
        raise ColorizationError("no calibration photos")
    rng = np.random.default_rng(seed)
    crops = np.empty((count, 1, size, size), np.float32)
    per_file = -(-count // len(files))
    order = rng.permutation(len(files))
    i = 0
    for k in order:
        if i >= count:
            break
        try:
            with Image.open(files[k]) as img:
                rgb = rgb8_over_white(img)
                rgb.load()
        except OSError:
            continue  # an unreadable file is skipped, as the data index does
        w, h = rgb.size
        for _ in range(min(per_file, count - i)):
            side = max(1, int(min(w, h) * rng.uniform(0.4, 1.0)))
            x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            crop = np.asarray(rgb.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR))
            crops[i] = net_input(lightness(crop), (size, size))[0]
            i += 1
    if i == 0:
        raise ColorizationError("none of the calibration photos could be read")
    return crops[:i]


def quantize(fp32: str | Path, output: str | Path, crops: np.ndarray, per_channel: bool = True) -> Path:
    """Write an int8 (QDQ) copy of the float ONNX model `fp32`, calibrated on the L crops (N×1×h×w)."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx.load(str(fp32))
    inputs = [i.name for i in source.graph.input]

    class Reader(CalibrationDataReader):
        """Feeds the crops one at a time (with empty hints for a model that takes them)."""

        def __init__(self) -> None:
            self.items = iter(range(len(crops)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self.items, None)
            if i is None:
                return None
            feed = {inputs[0]: crops[i : i + 1]}
            if len(inputs) > 1:
                feed[inputs[1]] = np.zeros((1, 3, *crops.shape[2:]), np.float32)
            return feed

    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantise the file as it is
            pre = Path(fp32)
        quantize_static(
            str(pre),
            str(Path(tmp) / "q.onnx"),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        model = onnx.load(str(Path(tmp) / "q.onnx"))
    del model.metadata_props[:]
    for entry in source.metadata_props:
        model.metadata_props.add().CopyFrom(entry)
    model.metadata_props.add().CopyFrom(onnx.StringStringEntryProto(key="quantization", value="int8 QDQ"))
    model.doc_string = source.doc_string
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(output))
    return output
