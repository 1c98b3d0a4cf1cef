"""Deploy bundles: a folder that colorizes anywhere Python runs, with numpy, Pillow and onnxruntime only.

    python -m colorization.export --ckpt last.ckpt --bundle deploy/ [--calibrate data=cats]
    python -m colorization.export --pretrained eccv16 --bundle deploy/

`write_bundle` takes any inference module with its ModelInfo (a checkpoint's, published weights', ...)
and writes:
- model.onnx: the float graph; a classification model returns bin logits, and the runtime decodes them
  by the annealed mean at the exported T or at one chosen per request; model.int8.onnx when calibrated;
- runtime.py: colorization.imaging.runtime copied byte for byte (colour work, the tuned ONNX session);
- handler.py: `handler(event, context)`, a base64 image in, a base64 PNG out, errors as a JSON body with
  a 4xx status (the serverless form: AWS Lambda's proxy events, or any caller of a function);
- requirements.txt: numpy, Pillow and onnxruntime pinned to the versions installed here;
- README.md: what the folder is, and the two commands that run it locally.
The folder is built beside DIR and renamed into place, so DIR is never half written; an existing DIR is
replaced only when it is a bundle (it holds runtime.py and model.onnx) or empty.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from colorization.errors import ColorizationError
from colorization.imaging import runtime
from colorization.inference.info import DEFAULT_SIZE, ModelInfo

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["RUNTIME_PACKAGES", "write_bundle"]

RUNTIME_PACKAGES = ("numpy", "Pillow", "onnxruntime")
"""What a bundle needs: nothing else is imported by runtime.py and handler.py."""

HANDLER = '''"""Serverless handler of this bundle: base64 image in, base64 PNG out; runtime.py does the work.

Event: {"image": "<base64 image file>", "temperature": 0.38, "enhance": [0.8, 0.2, 2, 4], "size": 256}
(only "image" is required), or an HTTP event (AWS Lambda proxy) whose "body" is that JSON, base64-encoded
when "isBase64Encoded" is true. Answer: {"statusCode": 200, "headers": {"Content-Type": "image/png"},
"body": "<base64 PNG>", "isBase64Encoded": true}; a bad request gets 400 (413 for too many pixels) and
a JSON body {"error": "..."}. COLORIZATION_MODEL picks the model file (default: model.int8.onnx when
present, else model.onnx); COLORIZATION_MAX_PIXELS the largest image accepted (default 50 million).

    python handler.py photo.jpg colorized.png     # the same call, locally
"""

import base64
import binascii
import io
import json
import os
import sys
from pathlib import Path

from PIL import Image

import runtime

HERE = Path(__file__).resolve().parent
MODEL = HERE / os.environ.get(
    "COLORIZATION_MODEL", "model.int8.onnx" if (HERE / "model.int8.onnx").is_file() else "model.onnx"
)
MAX_PIXELS = int(os.environ.get("COLORIZATION_MAX_PIXELS", "50000000"))
_model = None


class BadRequest(Exception):
    """A request this handler refuses, with its HTTP status."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _request(event):
    """The request's JSON object, from a direct event or an HTTP event's body."""
    if isinstance(event, (str, bytes)):
        event = {"body": event}
    if not isinstance(event, dict):
        raise BadRequest("the event must be a JSON object with an \\"image\\" (base64)")
    if "image" not in event and "body" in event:
        body = event["body"] or ""
        try:
            if event.get("isBase64Encoded"):
                body = base64.b64decode(body)
            event = json.loads(body)
        except (ValueError, binascii.Error):
            raise BadRequest("the body is not JSON: send {\\"image\\": \\"<base64>\\"}") from None
        if not isinstance(event, dict):
            raise BadRequest("the body must be a JSON object with an \\"image\\" (base64)")
    if not isinstance(event.get("image"), str) or not event["image"]:
        raise BadRequest("missing \\"image\\": give the image file as a base64 string")
    return event


def _options(req):
    """temperature, enhance and size from the request, checked."""
    opts = {}
    t = req.get("temperature")
    if t is not None:
        if not isinstance(t, (int, float)) or not t > 0:
            raise BadRequest(f"\\"temperature\\" must be a number > 0, got {t!r}")
        opts["temperature"] = float(t)
    e = req.get("enhance")
    if e is not None:
        if not isinstance(e, list) or len(e) != 4 or not all(isinstance(v, (int, float)) for v in e):
            raise BadRequest("\\"enhance\\" takes four numbers: [w, c, alpha, beta]")
        opts["enhance"] = [float(v) for v in e]
    s = req.get("size")
    if s is not None:
        if not isinstance(s, int) or isinstance(s, bool) or not 8 <= s <= 2048:
            raise BadRequest(f"\\"size\\" must be an integer in [8, 2048], got {s!r}")
        opts["size"] = s
    return opts


def _error(status, message):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": message}),
    }


def model():
    """The model, loaded once per process (a warm function reuses it)."""
    global _model
    if _model is None:
        _model = runtime.Model(MODEL)
    return _model


def handler(event, context=None):
    """Colorize the event's image; returns the HTTP-style answer described at the top of this file."""
    try:
        req = _request(event)
        opts = _options(req)
        try:
            data = base64.b64decode(req["image"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("\\"image\\" is not valid base64") from None
        try:
            img = Image.open(io.BytesIO(data))
        except OSError:
            raise BadRequest("\\"image\\" is not an image file PIL reads (JPEG, PNG, TIFF ...)") from None
        if img.width * img.height > MAX_PIXELS:
            raise BadRequest(f"the image has more than {MAX_PIXELS} pixels", status=413)
        try:
            img.load()
            out = runtime.colorize_image(model(), img, **opts)
        except OSError:
            raise BadRequest("\\"image\\" is truncated or damaged") from None
        except ValueError as e:
            raise BadRequest(str(e).splitlines()[0]) from None
    except BadRequest as e:
        return _error(e.status, str(e))
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(buf.getvalue()).decode("ascii"),
        "isBase64Encoded": True,
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python handler.py INPUT_IMAGE OUTPUT.png")
    answer = handler({"image": base64.b64encode(Path(sys.argv[1]).read_bytes()).decode("ascii")})
    if answer["statusCode"] != 200:
        sys.exit(f"error {answer['statusCode']}: {json.loads(answer['body'])['error']}")
    Path(sys.argv[2]).write_bytes(base64.b64decode(answer["body"]))
    print(f"wrote {sys.argv[2]}")
'''

README = """# Colorization model bundle

{description}

Everything here runs with numpy, Pillow and onnxruntime only (no PyTorch):

    pip install -r requirements.txt
    python runtime.py photo.jpg colorized.png

`python runtime.py --help` lists the options (`--temperature`, `--enhance W C ALPHA BETA`, `--size`,
`--model model.int8.onnx`). `handler.py` is the serverless entry point, `handler(event, context)`: send
`{{"image": "<base64 image file>"}}` (optionally `"temperature"`, `"enhance"`, `"size"`), directly or
as the JSON body of an HTTP event, and get a base64 PNG back; `python handler.py photo.jpg out.png` makes
the same call locally. Files: model.onnx (float32){int8}, runtime.py (colour conversion and the
ONNX Runtime session), handler.py, requirements.txt.
"""


def _describe(info: ModelInfo, logits: bool) -> str:
    """One paragraph on the model, for the README."""
    t = f" Annealed-mean temperature {info.temperature:g}" if info.temperature is not None else ""
    if t:
        t += " (exported; chosen per call with --temperature)." if logits else " (fixed at export)."
    size = info.image_size or DEFAULT_SIZE
    src = f" Exported from {Path(info.source).name}." if info.source else ""
    return f"A {info.objective} colorization model; network input {size}×{size} px.{t}{src}"


def _requirements() -> str:
    """The three runtime packages pinned to the versions installed here."""
    lines = []
    for name in RUNTIME_PACKAGES:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise ColorizationError(f"{name} is not installed here; a bundle pins its version") from None
    return "\n".join(lines) + "\n"


def _replaceable(folder: Path) -> None:
    """Refuse to replace a folder that holds anything but a previous bundle."""
    if folder.exists() and (
        not folder.is_dir()
        or (
            any(folder.iterdir())
            and not ((folder / "runtime.py").is_file() and (folder / "model.onnx").is_file())
        )
    ):
        raise ColorizationError(f"--bundle {folder} exists and is not a bundle; choose a new or empty folder")


def write_bundle(
    model: torch.nn.Module,
    info: ModelInfo,
    folder: str | Path,
    *,
    calibration: np.ndarray | None = None,
    opset: int | None = None,
    check: bool = True,
) -> Path:
    """Write a deploy bundle for an inference module (L_n → ab) and its info; `calibration` (normalised-L
    crops, N×1×h×w) also writes model.int8.onnx. Returns the folder."""
    from colorization.inference.export import MIN_OPSET, export_model

    folder = Path(folder)
    _replaceable(folder)
    requirements = _requirements()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.") as tmp:
        work = Path(tmp) / "bundle"
        work.mkdir()
        logits = info.objective == "classification" and hasattr(model, "points")
        export_model(model, work / "model.onnx", info, opset=opset or MIN_OPSET, check=check, logits=True)
        if calibration is not None:
            from colorization.inference.quantize import quantize

            quantize(work / "model.onnx", work / "model.int8.onnx", calibration)
        shutil.copyfile(runtime.__file__, work / "runtime.py")
        (work / "handler.py").write_text(HANDLER, encoding="utf-8")
        (work / "requirements.txt").write_text(requirements, encoding="utf-8")
        int8 = ", model.int8.onnx (int8, used by handler.py)" if calibration is not None else ""
        readme = README.format(description=_describe(info, logits), int8=int8)
        (work / "README.md").write_text(readme, encoding="utf-8")
        old = Path(tmp) / "old"
        if folder.exists():
            folder.rename(old)
        work.rename(folder)
    return folder
