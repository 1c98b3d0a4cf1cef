"""What a trained model does for users: colorize photos at full resolution, and ship the model as ONNX.

- info: ModelInfo, the ONNX metadata contract between export and colorize;
- files: images in and out (arrays, PIL, files; output planning for the command line);
- backends: TorchBackend (checkpoints, via load_model) and OnnxBackend (onnxruntime only);
- pretrained: published weights (eccv16, siggraph17) as inference models, via load_pretrained;
- hints: user hints for a network that takes them (the JSON format of `colorize --hints`);
- colorizer: the Colorizer (from_checkpoint, from_onnx, from_pretrained, from_module, load);
- export: checkpoint → ONNX with parity check (imports torch; not imported here);
- bundle: deploy folders (model, colorization.imaging.runtime, handler, pinned requirements);
- quantize: int8 static QDQ models calibrated on L crops;
- video: films in and out, batched, with scene cuts and temporal stabilisation (the video extra);
- cli: the colorize command (``python -m colorization.colorize``, console script ``colorize``).

Importing this package imports neither torch nor scikit-image: the ONNX path stays light.
"""

from colorization.inference.backends import Backend, OnnxBackend, TorchBackend, load_model
from colorization.inference.colorizer import Colorizer
from colorization.inference.info import DEFAULT_SIZE, ModelInfo

__all__ = ["DEFAULT_SIZE", "Backend", "Colorizer", "ModelInfo", "OnnxBackend", "TorchBackend", "load_model"]
