"""``python -m colorization.export``: checkpoint → ONNX, kept at its documented address.

The code is colorization.inference.export; its names are re-exported here.
"""

import sys

from colorization.inference.export import MIN_OPSET, check_parity, export_model, export_onnx, main

__all__ = ["MIN_OPSET", "check_parity", "export_model", "export_onnx", "main"]

if __name__ == "__main__":
    sys.exit(main())
